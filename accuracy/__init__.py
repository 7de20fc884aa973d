"""The accuracy certifier: bits of error of each layer's backward against the true derivative.

Herbie's metric: bits of error = log2(1 + the number of floats between the computed value and
the correctly rounded true value). The true value comes from mpmath (``reference``); the
computed values from mlp.MLP with either numerics profile and from torch autograd
(``measure``); ``report`` writes ACCURACY.md and accuracy.json and checks the targets.
"""
