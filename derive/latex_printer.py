"""SymPy -> LaTeX, for the fragments of theory.pdf in ``generated/theory/``.

``sympy.printing.latex.LatexPrinter`` does most of the work; this subclass overrides only
what the theory writes differently:

- symbol names: ``W1`` is W^{(1)}, ``yhat`` is the bold y-hat, ``dl_dyhat`` is the fraction
  d l / d y-hat, ... (one table per kind: matrix symbols are bold, scalars are not);
- ``Transpose`` is ^{\\top} and ``Identity`` is a bold I with its size;
- ``Max(0, a)`` is (a)^+, the handout's spelling of ReLU;
- ``Elementwise`` (a map applied to every entry of a vector, derive.theory.network) prints
  as the handout spells it: the identity as its argument, a map built from ``Max`` (5 ReLU)
  by its forward expression, any other by its name; its derivative as the role's name
  with a prime;
- a function with a ``latex_name`` (sigma, Phi, phi of derive.theory.readable) by that name;
- ``DiagMatrix`` is diag(.), and ``Piecewise`` reads "if" / "otherwise";
- a matrix product parenthesizes a factor that is a sum or that starts with a number.
"""
import sympy as sp
from sympy.printing.latex import LatexPrinter

MATRIX_NAMES = {
    "x": r"\boldsymbol{x}",
    "x_i": r"\boldsymbol{x}_i",
    "y_i": r"\boldsymbol{y}_i",
    "F_theta_x_i": r"F_{\theta}(\boldsymbol{x}_i)",
    "yhat_i": r"\hat{\boldsymbol{y}}_i",
    "y": r"\boldsymbol{y}",
    "yhat": r"\hat{\boldsymbol{y}}",
    "W1": r"\boldsymbol{W}^{(1)}",
    "b1": r"\boldsymbol{b}^{(1)}",
    "W2": r"\boldsymbol{W}^{(2)}",
    "b2": r"\boldsymbol{b}^{(2)}",
    "z1": r"\boldsymbol{z}_1",
    "z2": r"\boldsymbol{z}_2",
    "z3": r"\boldsymbol{z}_3",
    "dl_dyhat": r"\frac{\partial \ell}{\partial \hat{\boldsymbol{y}}}",
    "dyhat_dz3": r"\frac{\partial \hat{\boldsymbol{y}}}{\partial \boldsymbol{z}_3}",
    "dz2_dz1": r"\frac{\partial \boldsymbol{z}_2}{\partial \boldsymbol{z}_1}",
    "dl_dz3": r"\frac{\partial \ell}{\partial \boldsymbol{z}_3}",
    "dl_dz1": r"\frac{\partial \ell}{\partial \boldsymbol{z}_1}",
    # derive.linear's one-sample layer z = W x + b and its upstream row delta = dl/dz
    "W": r"\boldsymbol{W}",
    "b": r"\boldsymbol{b}",
    "z": r"\boldsymbol{z}",
    "delta": r"\boldsymbol{\delta}",
}

SCALAR_NAMES = {
    "z1_i": r"z_{1,i}",
    "z2_i": r"z_{2,i}",
    "z3_i": r"z_{3,i}",
    "z3_j": r"z_{3,j}",
    "yhat_i": r"\hat{y}_i",
    "yhat_j": r"\hat{y}_j",
    "y_j": r"y_j",
    "yhat": r"\hat{y}",
    "eta": r"\eta",
    "w_i": r"w_i",
    "x_i": r"x_i",
    "T": r"T",
}


class Slot(sp.Symbol):
    """A placeholder whose name is LaTeX already: a matrix argument inside a scalar formula."""


class TheoryLatexPrinter(LatexPrinter):

    def __init__(self, settings=None):
        defaults = {"fold_short_frac": False, "mul_symbol": None}
        defaults.update(settings or {})
        super().__init__(defaults)

    # -- names ------------------------------------------------------------------------------
    def _print_Symbol(self, expr, style="plain"):
        if expr.name in SCALAR_NAMES:
            return SCALAR_NAMES[expr.name]
        return super()._print_Symbol(expr, style)

    def _print_MatrixSymbol(self, expr):
        if expr.name in MATRIX_NAMES:
            return MATRIX_NAMES[expr.name]
        return super()._print_MatrixSymbol(expr)

    def _print_Slot(self, expr):
        return expr.name

    def _print_Str(self, expr):
        return expr.name

    # -- matrix algebra ---------------------------------------------------------------------
    def _print_Transpose(self, expr):
        inner = self._print(expr.arg)
        if isinstance(expr.arg, sp.MatrixSymbol) and "^" not in inner and r"\frac" not in inner:
            return inner + r"^{\top}"
        return r"\left(" + inner + r"\right)^{\top}"

    def _print_Identity(self, expr):
        return r"\boldsymbol{I}_{" + self._print(expr.rows) + "}"

    def _print_DiagMatrix(self, expr):
        return r"\operatorname{diag}\left(" + self._print(expr.args[0]) + r"\right)"

    def _factor(self, factor):
        text = self._print(factor)
        if isinstance(factor, (sp.MatAdd, sp.Add)) or (text[:1].isdigit() and not factor.is_number):
            return r"\left(" + text + r"\right)"
        return text

    def _print_MatMul(self, expr):
        coeff, factors = expr.as_coeff_matrices()
        text = r" \, ".join(self._factor(f) for f in factors)
        if coeff == -1:
            return "-" + text
        if coeff != 1:
            return self._factor(coeff) + r" \, " + text
        return text

    def _print_Add(self, expr, order=None):
        # A sum reads with its positive terms first: yhat - y, not -y + yhat.
        terms = self._as_ordered_terms(expr, order=order)
        positive = [t for t in terms if not t.could_extract_minus_sign()]
        if positive and len(positive) < len(terms):
            terms = positive + [t for t in terms if t.could_extract_minus_sign()]
            return super()._print_Add(sp.Add(*terms, evaluate=False), order="none")
        return super()._print_Add(expr, order=order)

    def _print_MatAdd(self, expr):
        terms = [self._print(t) for t in expr.args]
        text = terms[0]
        for t in terms[1:]:
            text += (" - " + t[1:].lstrip()) if t.startswith("-") else (" + " + t)
        return text

    # -- functions --------------------------------------------------------------------------
    def _print_Max(self, expr, exp=None):
        args = [a for a in expr.args if a != 0]
        if len(args) == 1 and len(expr.args) == 2:
            text = r"\left(" + self._print(args[0]) + r"\right)^{+}"
            return r"\left(" + text + r"\right)^{" + self._print(exp) + "}" if exp is not None else text
        return super()._print_Max(expr, exp)

    def _print_Piecewise(self, expr):
        rows = []
        for e, c in expr.args:
            condition = r"\text{otherwise}" if c == sp.true else r"\text{if } " + self._print(c)
            rows.append(self._print(e) + " & " + condition)
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"

    def _print_Function(self, expr, exp=None):
        name = getattr(expr.func, "latex_name", None)
        if name is None:
            return super()._print_Function(expr, exp)
        text = name + r"\left(" + ", ".join(self._print(a) for a in expr.args) + r"\right)"
        return text if exp is None else r"{}^{{{}}}".format(text, exp)

    def _print_Elementwise(self, expr):
        inner = self._print(expr.arg)
        if expr.order == 1:
            return r"{}'\!\left({}\right)".format(expr.role, inner)
        if expr.activation is None:  # an unspecified f or g
            return r"{}\left({}\right)".format(expr.role, inner)
        forward = expr.activation.forward
        if forward == expr.variable or forward.has(sp.Max):
            return self._print(forward.subs(expr.variable, Slot(inner)))
        return r"{}\left({}\right)".format(expr.activation.latex, inner)


def latex(expr, **settings):
    return TheoryLatexPrinter(settings).doprint(expr)


def shape(expr):
    """The dimensions of a matrix expression as the theory states them: R^{rows x cols}."""
    rows, cols = expr.shape
    return r"\mathbb{R}^{" + latex(rows) + r" \times " + latex(cols) + "}"
