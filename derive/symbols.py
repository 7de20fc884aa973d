"""The symbols every layer is written in. Their names are PyTorch's words: ``input`` is what
a layer receives, ``result`` what it returns, ``grad`` the upstream gradient dJ/d(result),
``target`` a loss's reference value. ``shifted`` is a vector layer's row minus its max
(derive.vector_layers), an element of the row like input."""
import sympy as sp

input, result, grad, target = sp.symbols("input result grad target", real=True)
shifted = sp.Symbol("shifted", real=True)
