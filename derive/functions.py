"""SymPy functions the layer definitions and the rewrite stage need beyond SymPy's own.

Like ``sympy.codegen.cfunctions.log1p``, each is a named function that the rewrite stage
introduces (``derive.rewrites``) and the printers map to one call; each rewrites back to
elementary functions, which is how the tests prove a rewrite equal to what it replaced.
"""
import sympy as sp


class ElementSum(sp.Function):
    """The sum of every element of a tensor-valued elementwise expression.

    A loss is ``scale * ElementSum(term(y_hat, y))``: the elementwise term is what SymPy
    differentiates; the sum is linear, so d(loss)/d(y_hat_i) is ``scale * term'(y_hat_i)``.
    """

    nargs = 1

    def _sympystr(self, printer):
        return "sum({})".format(printer._print(self.args[0]))

    def expand_over(self, substitutions):
        """The explicit sum: the term once per element, each given by a substitution dict
        (``[{input: yhat_0, target: y_0}, ...]``)."""
        return sp.Add(*[self.args[0].subs(s) for s in substitutions])


def expand_element_sums(expr, substitutions):
    """Every ElementSum in ``expr`` written out over the given elements."""
    return expr.replace(lambda e: isinstance(e, ElementSum), lambda e: e.expand_over(substitutions))


class Sigmoid(sp.Function):
    """sigma(a) = 1/(1 + exp(-a)), evaluated as one kernel (``torch.sigmoid``) that neither
    overflows nor loses 1 - sigma where exp(-a) is huge."""

    nargs = 1

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0]) * Sigmoid(-self.args[0])

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return 1 / (1 + sp.exp(-arg))

    _eval_rewrite_as_elementary = _eval_rewrite_as_exp

    def _eval_evalf(self, prec):
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _sympystr(self, printer):
        return "sigmoid({})".format(printer._print(self.args[0]))

    def _latex(self, printer):
        return r"\sigma\left({}\right)".format(printer._print(self.args[0]))


class DivideLast(sp.Function):
    """numerator / count, divided last and not folded by SymPy's automatic simplification:
    the rounding order of PyTorch's 'mean' reductions (see ``rewrites.DIVIDE_COUNT_LAST``)."""

    nargs = 2

    def _eval_rewrite_as_elementary(self, numerator, count, **kwargs):
        return numerator / count

    def _sympystr(self, printer):
        numerator, count = self.args
        below = printer._print(count)
        return "{}/{}".format(printer.parenthesize(numerator, 50),
                              below if count.is_Symbol or count.is_Integer else "(" + below + ")")


def elementary(expr):
    """expr with every function of this module (and log1p, expm1) written out."""
    from sympy.codegen.cfunctions import expm1, log1p
    expr = expr.replace(lambda e: isinstance(e, (Sigmoid, DivideLast, Erfc, HighHalf)),
                        lambda e: e.rewrite("elementary"))
    return expr.replace(lambda e: isinstance(e, log1p), lambda e: sp.log(1 + e.args[0])) \
               .replace(lambda e: isinstance(e, expm1), lambda e: sp.exp(e.args[0]) - 1)


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

    _eval_rewrite_as_elementary = _eval_rewrite_as_erfc

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

    def _eval_rewrite_as_elementary(self, a, **kwargs):
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
    return [{"Erfc": mpmath.erfc, "HighHalf": lambda a: a, "Sigmoid": lambda a: 1 / (1 + mpmath.exp(-a)),
             "log1p": mpmath.log1p, "expm1": mpmath.expm1}, "mpmath"]


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
