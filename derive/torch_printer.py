"""SymPy -> torch source, for the code in ``generated/``.

``sympy.printing.pytorch.TorchPrinter`` does most of the work; this subclass overrides only
what it gets wrong for us or what has a better torch spelling:

- numbers: it prints ``torch.sqrt(2)`` (not a valid call on a Python int); we print float
  literals for every non-integer numeric factor;
- ``Max(0, z)``: it prints ``torch.max(0, z)`` (invalid); we print ``torch.relu(z)``, and
  ``Max(z, c)`` as ``torch.clamp(z, min=c)``;
- ``Piecewise`` with a zero branch: ``grad * (cond)`` instead of ``torch.where`` (torch 1.7.1,
  the course's version, has no Python-scalar ``torch.where`` branches);
- ``1/(1 + exp(-a))`` is ``torch.sigmoid(a)`` and ``log(1 + a)`` is ``torch.log1p(a)``;
- the batched matrix algebra of ``derive.linear`` as ``mm``/``addmm``/``sum``.

The printer also refuses expressions it cannot print faithfully, rather than emitting code
that would compute something else.
"""
import sympy as sp
from sympy.printing.precedence import PRECEDENCE


def _sympy_torch_printer():
    """sympy.printing.pytorch imports torch (about 2 s, most of a cold `make derive`) only to
    read torch.__version__; printing needs no torch. Import it with torch hidden from
    sympy's import_module; TorchPrinter below passes the course's version instead."""
    import sympy.external as external
    real = external.import_module

    def without_torch(module, *args, **kwargs):
        return None if module == "torch" else real(module, *args, **kwargs)

    external.import_module = without_torch
    try:
        from sympy.printing.pytorch import TorchPrinter
    finally:
        external.import_module = real
    return TorchPrinter


_SymPyTorchPrinter = _sympy_torch_printer()
_MUL = PRECEDENCE["Mul"]


def _is_sigmoid(expr):
    """Match ``1/(1 + exp(-a))``; return ``a`` or None."""
    if not (isinstance(expr, sp.Pow) and expr.exp == -1 and isinstance(expr.base, sp.Add)):
        return None
    terms = expr.base.args
    if len(terms) != 2 or sp.S.One not in terms:
        return None
    other = terms[0] if terms[1] == 1 else terms[1]
    if isinstance(other, sp.exp):
        return -other.args[0]
    return None


class TorchPrinter(_SymPyTorchPrinter):
    printmethod = "_torchcode_project"

    def __init__(self, settings=None):
        super().__init__(dict({"torch_version": "1.7.1"}, **(settings or {})))

    # -- numbers ----------------------------------------------------------------------------
    def _print_Rational(self, expr):
        if expr.q == 1:
            return str(expr.p)
        return repr(float(expr))

    def _number(self, expr):
        return repr(float(expr))

    def _print_Mul(self, expr):
        # Written out in full (not delegated) so that irrational numeric factors fold into
        # one float literal and a sigmoid factor is not turned into a division.
        if expr.is_number:
            return self._number(expr)
        coeff, factors = expr.as_coeff_mul()
        coeff *= sp.Mul(*[f for f in factors if f.is_number])
        numerator, denominator = [], []
        for f in factors:
            if f.is_number:
                continue
            if _is_sigmoid(f) is None and f.is_Pow and f.exp.is_negative:
                denominator.append(sp.Pow(f.base, -f.exp))
            else:
                numerator.append(f)
        counts = [f for f in denominator if f.is_Symbol and f.is_integer]
        if counts:
            return self._divide_by_counts(expr, counts)
        text = "*".join(self.parenthesize(f, _MUL, strict=True) for f in numerator) or "1"
        if denominator:
            below = "*".join(self.parenthesize(f, _MUL, strict=True) for f in denominator)
            text += "/" + (below if len(denominator) == 1 and not denominator[0].is_Mul
                           and self.parenthesize(denominator[0], _MUL) == below else "(" + below + ")")
        sign = "-" if coeff.is_negative else ""
        magnitude = abs(coeff)
        if magnitude != 1:
            text = "{}*{}".format(self._print(magnitude) if magnitude.is_Rational else self._number(magnitude), text)
        return sign + text

    def _divide_by_counts(self, expr, counts):
        """rest/numel: a count in a denominator (a reduction's N) divides last.

        PyTorch's 'mean' reductions divide last (BCELoss's backward computes its elementwise
        formula, then divides by numel). Trap: where y_hat saturates, BCE's gradient is 1e6 to
        1e12 and one float32 ulp is more than the course's absolute 1e-3, so folding numel
        into the other denominator, or multiplying by 1/numel first, fails its tests.
        A power-of-two coefficient moves under the count, c*t/n -> t/(n/c): one tensor op
        less, and the same value (scaling by 2**k is exact).
        """
        coeff, factors = expr.as_coeff_mul()
        # Built from the factors, not as expr * count: SymPy would distribute the
        # coefficient over a sum, 2*(x - y) -> 2*x - 2*y.
        rest = sp.Mul(*[f for f in factors if not (f.is_Pow and f.base in counts and f.exp == -1)])
        below = self.parenthesize(sp.Mul(*counts), _MUL, strict=True)
        power = abs(coeff)
        if power.is_Integer and power > 1 and power & (power - 1) == 0 and len(counts) == 1:
            coeff, below = sp.sign(coeff), "({}/{})".format(below, power)
        text = self.parenthesize(rest, _MUL, strict=True)
        if coeff == -1:
            text = "-" + text
        elif coeff != 1:
            text = "{}*{}".format(self._print(coeff), text)
        return "{}/{}".format(text, below)

    def _print_Pow(self, expr):
        if expr.is_number:
            return self._number(expr)
        arg = _is_sigmoid(expr)
        if arg is not None:
            return "torch.sigmoid({})".format(self._print(arg))
        base, exp = expr.as_base_exp()
        if exp.is_Integer and exp > 0:
            return "{}**{}".format(self.parenthesize(base, PRECEDENCE["Pow"]), exp)
        if exp == -1:
            return "1/{}".format(self.parenthesize(base, PRECEDENCE["Pow"]))
        return super()._print_Pow(expr)

    # -- functions --------------------------------------------------------------------------
    def _print_log(self, expr):
        (arg,) = expr.args
        if isinstance(arg, sp.Add) and sp.S.One in arg.args:
            return "torch.log1p({})".format(self._print(arg - 1))
        return "torch.log({})".format(self._print(arg))

    def _print_Max(self, expr):
        numbers = [a for a in expr.args if a.is_number]
        tensors = [a for a in expr.args if not a.is_number]
        if numbers == [0] and len(tensors) == 1:  # ReLU's own kernel: one dispatch, no scalar
            return "torch.relu({})".format(self._print(tensors[0]))
        if len(numbers) == 1 and len(tensors) == 1:
            return "torch.clamp({}, min={})".format(self._print(tensors[0]), self._print(numbers[0]))
        raise NotImplementedError("TorchPrinter prints Max only as Max(tensor, number), got {}".format(expr))

    def _print_ElementSum(self, expr):  # derive.functions.ElementSum
        return "torch.sum({})".format(self._print(expr.args[0]))

    # Row reductions of the vector layers (derive.vector_layers): over dim 1, the features of
    # one sample, kept as a column so that they broadcast back over the row.
    def _print_RowSum(self, expr):  # derive.functions.RowSum
        return "{}.sum(1, keepdim=True)".format(self.parenthesize(expr.args[0], PRECEDENCE["Func"], strict=True))

    def _print_RowMax(self, expr):  # derive.functions.RowMax
        return "{}.amax(1, keepdim=True)".format(self.parenthesize(expr.args[0], PRECEDENCE["Func"], strict=True))

    def _print_Relational(self, expr):
        return "{} {} {}".format(self._print(expr.lhs), expr.rel_op, self._print(expr.rhs))

    def _print_Piecewise(self, expr):
        # Two branches (value, cond), (other, True). A zero branch zeroes value where the
        # condition fails: value.masked_fill(not cond, 0), as PyTorch's threshold_backward
        # (`result <= 0 ? 0 : grad`). Trap: under NaN, `result <= 0` and `result > 0` are both
        # false, so a NaN result passes grad through, as autograd's ReLU does; and it is one
        # kernel, where grad * (cond) is a comparison plus a float-times-bool multiply.
        if len(expr.args) != 2 or expr.args[1].cond != sp.true:
            raise NotImplementedError("TorchPrinter prints two-branch Piecewise only, got {}".format(expr))
        (value, cond), (other, _) = expr.args
        if other == 0 and not value.is_number:
            return "{}.masked_fill({}, 0)".format(self.parenthesize(value, PRECEDENCE["Atom"], strict=True),
                                                  self._print(sp.Not(cond)))
        if value.is_number or other.is_number:
            raise NotImplementedError(
                "a Piecewise branch is a bare number ({}); fold `grad` into it first "
                "(torch 1.7.1's torch.where takes tensors only)".format(expr))
        return "torch.where({}, {}, {})".format(self._print(cond), self._print(value), self._print(other))

    # -- batched matrix algebra (derive.linear) ---------------------------------------------
    def _print_Transpose(self, expr):
        return "{}.t()".format(self.parenthesize(expr.arg, PRECEDENCE["Atom"], strict=True))

    def _print_MatMul(self, expr):
        factors = list(expr.args)
        if isinstance(factors[-1], sp.OneMatrix):
            # A @ ones(B, 1) sums A over its columns; with A = G^T that is G.sum(0).
            rest = sp.MatMul(*factors[:-1]).doit() if len(factors) > 2 else factors[0]
            if isinstance(rest, sp.Transpose):
                return "{}.sum(0)".format(self._print(rest.arg))
            return "{}.sum(1)".format(self._print(rest))
        text = self._print(factors[0])
        for f in factors[1:]:
            text = "{}.mm({})".format(text, self._print(f))
        return text

    def _print_MatAdd(self, expr):
        # X W^T + 1 b^T is torch.addmm(b, X, W^T): the bias broadcast over the batch rows.
        bias = [t for t in expr.args if isinstance(t, sp.MatMul) and isinstance(t.args[0], sp.OneMatrix)]
        rest = [t for t in expr.args if t not in bias]
        if len(bias) == 1 and len(rest) == 1 and isinstance(rest[0], sp.MatMul) and len(rest[0].args) == 2:
            b = bias[0].args[1]
            b = b.arg if isinstance(b, sp.Transpose) else b
            m1, m2 = rest[0].args
            return "torch.addmm({}, {}, {})".format(self._print(b), self._print(m1), self._print(m2))
        return " + ".join(self._print(t) for t in expr.args)

    def _print_MatrixSymbol(self, expr):
        return expr.name


def torch_code(expr):
    return TorchPrinter().doprint(expr)


def torch_statements(expr, definitions=()):
    """``(assignments, result)``: the named ``definitions`` first, then SymPy's common
    subexpression elimination, so that a subexpression used twice is computed once."""
    assignments = [(symbol.name, torch_code(value)) for symbol, value in definitions]
    names = sp.numbered_symbols("t")
    replaced, (reduced,) = sp.cse(expr, symbols=names)
    assignments += [(symbol.name, torch_code(value)) for symbol, value in replaced]
    return assignments, torch_code(reduced)
