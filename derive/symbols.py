"""The symbols every layer is written in. Their names are PyTorch's words: ``input`` is what
a layer receives, ``result`` what it returns, ``grad`` the upstream gradient dJ/d(result),
``target`` a loss's reference value."""
import sympy as sp

input, result, grad, target = sp.symbols("input result grad target", real=True)
