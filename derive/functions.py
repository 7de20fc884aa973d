"""SymPy functions the layer definitions need beyond SymPy's own."""
import sympy as sp


class ElementSum(sp.Function):
    """The sum of every element of a tensor-valued elementwise expression.

    A loss is ``scale * ElementSum(term(y_hat, y))``: the elementwise term is what SymPy
    differentiates; the sum is linear, so d(loss)/d(y_hat_i) is ``scale * term'(y_hat_i)``.
    """

    nargs = 1

    def _sympystr(self, printer):
        return "sum({})".format(printer._print(self.args[0]))
