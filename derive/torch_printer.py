"""SymPy -> torch source, for the code in ``generated/``.

``sympy.printing.pytorch.TorchPrinter`` does most of the work; this subclass overrides only
what it gets wrong for us or what has a better torch spelling, and maps names from a table
(``mapping``), as SymPy's own printers do. It recognizes nothing: the numeric rewrites
(sigmoid, log1p, expm1, the order of a reduction's division) happen before printing, in
``derive.rewrites``, which hands it named functions (``Sigmoid``, ``log1p``, ``DivideLast``).

- numbers: it prints ``torch.sqrt(2)`` (not a valid call on a Python int); we print float
  literals for every non-integer numeric factor;
- ``Max(0, z)``: it prints ``torch.max(0, z)`` (invalid); we print ``torch.relu(z)``, and
  ``Max``/``Min`` with a number as ``torch.clamp``;
- ``Piecewise``: a zero piece as ``masked_fill``, others as ``torch.where`` (torch 1.7.1,
  the course's version, has no Python-scalar ``torch.where`` branches);
- the batched matrix algebra of ``derive.linear`` as ``mm``/``addmm``/``sum``.

The printer also refuses expressions it cannot print faithfully, rather than emitting code
that would compute something else.
"""
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.printing.precedence import PRECEDENCE

from derive.functions import Sigmoid


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


class TorchPrinter(_SymPyTorchPrinter):
    printmethod = "_torchcode_project"

    # SymPy's table plus the named functions the rewrite stage introduces. Every name here
    # exists in torch 1.7.1 (the course's version; submission/api_check.py checks the
    # printed code against its API); a function 1.7.1 lacks is written in a row from
    # elementary ones instead, and the rewrite stage never introduces it.
    mapping = {**_SymPyTorchPrinter.mapping, Sigmoid: "torch.sigmoid", log1p: "torch.log1p",
               expm1: "torch.expm1"}

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
        # one float literal.
        if expr.is_number:
            return self._number(expr)
        coeff, factors = expr.as_coeff_mul()
        coeff *= sp.Mul(*[f for f in factors if f.is_number])
        numerator, denominator = [], []
        for f in factors:
            if f.is_number:
                continue
            if f.is_Pow and f.exp.is_negative:
                denominator.append(sp.Pow(f.base, -f.exp))
            else:
                numerator.append(f)
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

    def _print_DivideLast(self, expr):  # derive.functions.DivideLast: a / b, in that order
        numerator, count = expr.args
        below = self._print(count)
        if not (count.is_Symbol or count.is_Integer):
            below = "(" + below + ")"
        return "{}/{}".format(self.parenthesize(numerator, _MUL, strict=True), below)

    def _print_Pow(self, expr):
        if expr.is_number:
            return self._number(expr)
        base, exp = expr.as_base_exp()
        if exp.is_Integer and exp > 0:
            return "{}**{}".format(self.parenthesize(base, PRECEDENCE["Pow"]), exp)
        if exp == -1:
            return "1/{}".format(self.parenthesize(base, PRECEDENCE["Pow"]))
        return super()._print_Pow(expr)

    # -- functions --------------------------------------------------------------------------
    def _print_Function(self, expr):
        # Named functions by the table (SymPy's own printer would reject Sigmoid & co.).
        name = self.mapping.get(type(expr))
        if name is None:
            raise NotImplementedError("TorchPrinter has no torch spelling for {}".format(type(expr).__name__))
        return "{}({})".format(name, ", ".join(self._print(a) for a in expr.args))

    _print_Sigmoid = _print_log1p = _print_expm1 = _print_log = _print_exp = _print_Function
    _print_tanh = _print_erf = _print_Abs = _print_sign = _print_Function

    def _clamp(self, tensor, low=None, high=None):
        bounds = [(k, self._print(v)) for k, v in (("min", low), ("max", high)) if v is not None]
        return "torch.clamp({}, {})".format(self._print(tensor), ", ".join("{}={}".format(k, v) for k, v in bounds))

    def _print_Max(self, expr):
        numbers = [a for a in expr.args if a.is_number]
        tensors = [a for a in expr.args if not a.is_number]
        if numbers == [0] and len(tensors) == 1:  # ReLU's own kernel: one dispatch, no scalar
            return "torch.relu({})".format(self._print(tensors[0]))
        if len(numbers) == 1 and len(tensors) == 1:
            return self._clamp(tensors[0], low=numbers[0])
        raise NotImplementedError("TorchPrinter prints Max only as Max(tensor, number), got {}".format(expr))

    def _print_Min(self, expr):
        numbers = [a for a in expr.args if a.is_number]
        tensors = [a for a in expr.args if not a.is_number]
        if len(numbers) == 1 and len(tensors) == 1:
            inner = tensors[0]
            if isinstance(inner, sp.Max) and len([a for a in inner.args if a.is_number]) == 1:
                low = [a for a in inner.args if a.is_number][0]
                (tensor,) = [a for a in inner.args if not a.is_number]
                return self._clamp(tensor, low=low, high=numbers[0])  # one clamp, as hardtanh
            return self._clamp(inner, high=numbers[0])
        raise NotImplementedError("TorchPrinter prints Min only as Min(tensor, number), got {}".format(expr))

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

    def _boolean(self, expr):
        text = self._print(expr)
        return text if isinstance(expr, sp.Not) else "(" + text + ")"

    def _print_And(self, expr):
        return " & ".join(self._boolean(a) for a in sorted(expr.args, key=str))

    def _print_Or(self, expr):
        return " | ".join(self._boolean(a) for a in sorted(expr.args, key=str))

    def _print_Not(self, expr):
        return "~({})".format(self._print(expr.args[0]))

    def _print_Piecewise(self, expr):
        # Faithful to SymPy's semantics, NaN included: conditions are tried in order and a
        # NaN input fails every comparison, so it takes the last (True) piece. The rewrite
        # stage (rewrites.KINKS) puts there the piece PyTorch's backward gives a NaN.
        # A zero piece is a mask (value.masked_fill(cond, 0), as PyTorch's threshold_backward):
        # one kernel, where grad * (cond) is a comparison plus a float-times-bool multiply.
        if expr.args[-1].cond != sp.true:
            raise NotImplementedError("TorchPrinter prints a Piecewise only with a final True piece, "
                                      "got {}".format(expr))
        (value, cond), rest = expr.args[0], expr.args[1:]
        if not rest:
            return self._print(value)
        other = rest[0].expr if len(rest) == 1 else sp.Piecewise(*rest)
        if value == 0 and not other.is_number:
            return "{}.masked_fill({}, 0)".format(self.parenthesize(other, PRECEDENCE["Atom"], strict=True),
                                                  self._print(cond))
        if other == 0 and not value.is_number:
            return "{}.masked_fill({}, 0)".format(self.parenthesize(value, PRECEDENCE["Atom"], strict=True),
                                                  self._print(sp.Not(cond, evaluate=False)))
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
