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


def _depends_on_the_element(expr):
    """True when expr varies along a row: it holds an element symbol (input, result, grad,
    target, shifted)."""
    from derive.symbols import grad, input, result, shifted, target
    return bool(expr.free_symbols & {input, result, grad, target, shifted})


class RowSum(sp.Function):
    """sum_j expr_j over one sample's features (dim 1 of a (batch, features) tensor), kept as
    a column so that it broadcasts back over the row.

    Linear, and a factor that is constant along the row (no element symbol in it, e.g. a
    per-row normalizer S) moves out: RowSum(c * e) = c * RowSum(e).
    """

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if arg.is_Mul:
            outside = [f for f in arg.args if not _depends_on_the_element(f)]
            if outside:
                inside = [f for f in arg.args if _depends_on_the_element(f)]
                return sp.Mul(*outside) * cls(sp.Mul(*inside))
        return None

    def _sympystr(self, printer):
        return "rowsum({})".format(printer._print(self.args[0]))


class RowMax(sp.Function):
    """max_j expr_j over one sample's features, kept as a column (constant along the row)."""

    nargs = 1

    def _sympystr(self, printer):
        return "rowmax({})".format(printer._print(self.args[0]))
