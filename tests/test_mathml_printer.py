"""derive/mathml_printer.py: what it prints differently from SymPy's presentation printer."""
import html
import re
import xml.etree.ElementTree as ET

import pytest
import sympy as sp

from derive.functions import ElementSum
from derive.mathml_printer import mathml
from derive.symbols import input, result


def as_xml(markup):
    """HTML's named references (&InvisibleTimes;) as characters; XML's own five kept."""
    return re.sub(r"&(\w+);", lambda m: m.group(0) if m.group(1) in ("lt", "gt", "amp", "quot", "apos")
                  else html.unescape(m.group(0)), markup)


def tree(expr):
    return ET.fromstring(as_xml(mathml(expr)))


def texts(node, tag):
    return [e.text for e in node.iter(tag)]


def test_piecewise_is_a_brace_with_a_row_per_piece():
    root = tree(sp.Piecewise((1, result > 0), (sp.Rational(1, 100), input < -3), (0, True)))
    rows = list(root.iter("mtr"))
    assert len(rows) == 3
    assert texts(rows[0], "mtext") == ["if"] and texts(rows[2], "mtext") == ["otherwise"]
    assert "<" in texts(rows[1], "mo")  # escaped in the markup, a less-than sign once parsed
    assert "piecewise" not in mathml(sp.Piecewise((1, input > 0), (0, True)))


@pytest.mark.parametrize("expr, operator", [(1 - result, "\u2212"), (-input, "\u2212"),
                                            (sp.Symbol("grad") * result, "\u00b7")])
def test_minus_and_product_signs(expr, operator):
    assert operator in texts(tree(expr), "mo")
    assert "-" not in texts(tree(expr), "mo")


def test_small_powers_of_ten_and_element_sums():
    assert texts(tree(sp.Rational(1, 10**12)), "mn") == ["10", "\u221212"]
    assert texts(tree(sp.Rational(1, 100)), "mn") == ["1", "100"]
    root = tree(ElementSum(input ** 2) / sp.Symbol("numel"))
    assert "\u2211" in texts(root, "mo") and "elements" in texts(root, "mtext")


def test_matrix_constants_are_characters_not_unterminated_references():
    text = mathml(sp.OneMatrix(3, 1))
    assert "&#x1D7D9<" not in text and "\U0001D7D9" in html.unescape(text)
    assert texts(tree(sp.Max(0, input)), "mi")[0] == "max"
