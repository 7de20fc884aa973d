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


class Erfc(sp.Function):
    """erfc(a), kept as written: SymPy's own erfc turns erfc(-a) into 2 - erfc(a), which is
    the cancellation the accurate profile's erfc form exists to avoid (2 - 2 = 0 where
    erfc(-a) is tiny)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return -2 * sp.exp(-self.args[0] ** 2) / sp.sqrt(sp.pi)

    def _eval_rewrite_as_erfc(self, a, **kwargs):
        return sp.erfc(a)

    def _eval_rewrite_as_erf(self, a, **kwargs):
        return 1 - sp.erf(a)

    def _eval_evalf(self, prec):
        return sp.erfc(self.args[0])._eval_evalf(prec)

    def _torchcode_project(self, printer):
        return "torch.erfc({})".format(printer._print(self.args[0]))

    def _latex(self, printer, exp=None):
        tex = r"\operatorname{{erfc}}\left({}\right)".format(printer._print(self.args[0]))
        return tex if exp is None else r"{}^{{{}}}".format(tex, exp)


class HighHalf(sp.Function):
    """a with the low half of its mantissa cleared: h*h is then exact, so a*a = h*h + (a - h)*(a + h)
    carries no rounding in its large part. Any h makes that identity true, so for the
    mathematics (proofs, reference values) HighHalf(a) is a itself.

    Printed as a rounded to float32 (exact for float32 inputs, whose h = a), with |a| clamped
    to 1e4 first: beyond that exp(-a*a/2) is 0 in every dtype and the clamp keeps inf out.
    """

    nargs = 1

    def _eval_rewrite_as_Id(self, a, **kwargs):
        return a

    def _eval_evalf(self, prec):
        return self.args[0]._eval_evalf(prec)

    def _torchcode_project(self, printer):
        return "{}.clamp(-1e4, 1e4).float().to({}.dtype)".format(
            printer.parenthesize(self.args[0], 1000, strict=True), printer._print(self.args[0]))

    def _latex(self, printer, exp=None):
        tex = r"\operatorname{{hi}}\left({}\right)".format(printer._print(self.args[0]))
        return tex if exp is None else r"{}^{{{}}}".format(tex, exp)


def mpmath_modules():
    """lambdify's ``modules`` for expressions that may hold the functions above."""
    import mpmath
    return [{"Erfc": mpmath.erfc, "HighHalf": lambda a: a}, "mpmath"]
