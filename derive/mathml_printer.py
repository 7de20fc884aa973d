"""SymPy -> presentation MathML, for the catalogue's web page (``make site``).

``sympy.printing.mathml.MathMLPresentationPrinter`` prints nearly everything the layers hold;
this subclass overrides only what it prints wrongly or not at all:

- ``Piecewise`` comes out as the function call ``piecewise((1, result > 0), (0, True))``: here it
  is a brace with one row per piece, "if ..." / "otherwise", as the theory writes it;
- ``ElementSum`` (derive.functions) is a sum over the elements;
- ``OneMatrix`` and ``ZeroMatrix`` carry character references without their closing ``;``
  (SymPy 1.14), which an HTML parser reports; here they are the characters themselves;
- a transpose is a superscript ⊤, not the letter T;
- ``max``/``min`` are function names (``mi``), not operators with operator spacing;
- a product shows its dot: the catalogue's names have several letters (``grad·result``);
- a minus is U+2212, not the hyphen SymPy writes, and ``<`` is escaped (SymPy writes it raw);
- 1/10^k for k >= 4 (BCE's 1e-12) is 10^-k;
- derive.functions' own classes: ``Sigmoid`` is σ(.), ``DivideLast`` a fraction, ``RowSum``
  and ``RowMax`` a sum and a max over the row (one sample's features).

Browsers render presentation MathML natively: no script, no web font.
"""
import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter


class CatalogueMathMLPrinter(MathMLPresentationPrinter):

    def __init__(self, settings=None):
        super().__init__(dict({"mul_symbol": "dot"}, **(settings or {})))

    def doprint(self, expr):
        tree = self._print(expr)
        self._typeset(tree)
        return tree.toxml().encode("ascii", "xmlcharrefreplace").decode()

    def _typeset(self, node):
        """U+2212 for a leading hyphen; a visible dot for the invisible times SymPy puts
        between matrix factors (``input·weight``, not ``inputweight``)."""
        text = node.firstChild.data if node.nodeName in ("mo", "mn") and node.firstChild is not None else ""
        if text.startswith("-"):
            node.firstChild.data = "\u2212" + text[1:]
        elif node.nodeName == "mo" and text == "&InvisibleTimes;":
            node.firstChild.data = "\u00b7"
        for child in node.childNodes:
            self._typeset(child)

    def mathml_tag(self, e):
        tag = super().mathml_tag(e)
        return "&lt;" if tag == "<" else tag

    def _element(self, tag, text=None, **attributes):
        node = self.dom.createElement(tag)
        for key, value in attributes.items():
            node.setAttribute(key.replace("_", "-"), value)
        if text is not None:
            node.appendChild(self.dom.createTextNode(text))
        return node

    def _row(self, *children):
        mrow = self._element("mrow")
        for child in children:
            mrow.appendChild(child)
        return mrow

    def _print_Piecewise(self, expr):
        table = self._element("mtable", columnalign="left left", columnspacing="1em")
        for value, condition in expr.args:
            if condition == sp.true:
                said = self._element("mtext", "otherwise")
            else:
                said = self._row(self._element("mtext", "if"), self._element("mspace", width="0.4em"),
                                 self._print(condition))
            tr = self._element("mtr")
            for cell in (self._print(value), said):
                td = self._element("mtd")
                td.appendChild(cell)
                tr.appendChild(td)
            table.appendChild(tr)
        return self._row(self._element("mo", "{", stretchy="true"), table)

    def _over(self, operator, where, expr, **attributes):
        under = self._element("munder")
        under.appendChild(self._element("mo", operator, movablelimits="false", **attributes))
        under.appendChild(self._element("mtext", where))
        return self._row(under, self._paren_comma_separated(*expr.args))

    def _print_ElementSum(self, expr):
        return self._over("\u2211", "elements", expr, largeop="true")

    def _print_RowSum(self, expr):
        return self._over("\u2211", "row", expr, largeop="true")

    def _print_RowMax(self, expr):
        return self._over("max", "row", expr)

    def _print_Sigmoid(self, expr):
        return self._row(self._element("mi", "\u03c3"), self._paren_comma_separated(*expr.args))

    def _print_DivideLast(self, expr):
        numerator, count = expr.args
        frac = self._element("mfrac")
        frac.appendChild(self._print(numerator))
        frac.appendChild(self._print(count))
        return frac

    def _print_Rational(self, expr):
        q = int(expr.q)
        k = len(str(q)) - 1
        if expr.p == 1 and q == 10 ** k and k >= 4:
            sup = self._element("msup")
            sup.appendChild(self._element("mn", "10"))
            sup.appendChild(self._element("mn", "-{}".format(k)))
            return sup
        return super()._print_Rational(expr)

    def _print_Max(self, expr):
        return self._row(self._element("mi", type(expr).__name__.lower()),
                         self._paren_comma_separated(*expr.args))

    _print_Min = _print_Max

    def _print_OneMatrix(self, expr):
        return self._element("mn", "\U0001D7D9")  # double-struck 1

    def _print_ZeroMatrix(self, expr):
        return self._element("mn", "\U0001D7D8")  # double-struck 0

    def _print_Transpose(self, expr):
        sup = super()._print_Transpose(expr)
        sup.lastChild.firstChild.data = "\u22A4"
        return sup


def mathml(expr, display="block"):
    """A complete ``<math>`` element for expr."""
    body = CatalogueMathMLPrinter().doprint(expr)
    return '<math display="{}">{}</math>'.format(display, body)
