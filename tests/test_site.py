"""The catalogue page (`make site`): built from derive/, opened in a real headless Chromium.

The browser tests need Debian's chromium and chromium-driver (`make setup` installs them) and
selenium; they fail, naming `make setup`, when those are missing, so CI cannot pass without
having looked at the page. Screenshots are saved under out/site-screenshots/.
"""
import json
import pathlib
import re
import shutil
import tempfile
import types
import xml.etree.ElementTree as ET

import pytest
import torch

from derive import activations, losses, render, rewrites, vector_layers
from derive.web import accuracy, build, figures, sections
from generated import layers as generated
from test_mathml_printer import as_xml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "out" / "site-screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1400")

# Every row of the catalogue, read from derive/ (plus the one affine layer).
CATALOGUE = (["linear"] + [a.name for a in activations.ACTIVATIONS] + [v.name for v in vector_layers.VECTOR_LAYERS]
             + [loss.name for loss in losses.LOSSES])
ELEMENTWISE = [a.name for a in activations.ACTIVATIONS]
VECTOR = [v.name for v in vector_layers.VECTOR_LAYERS]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    assert build.main(["--out", str(out), "--accuracy", str(out / "absent.json")]) == 0
    return out / "index.html"


# -- the page's content, without a browser --------------------------------------------------
def test_every_catalogue_row_has_a_section_and_an_index_line(site):
    text = site.read_text()
    assert re.findall(r'<section class="layer" id="layer-([\w]+)"', text) == CATALOGUE
    for name in CATALOGUE:
        assert 'href="#layer-{}"'.format(name) in text


def test_every_formula_is_well_formed_presentation_mathml(site):
    formulas = re.findall(r"<math\b.*?</math>", site.read_text(), flags=re.S)
    assert len(formulas) > 5 * len(CATALOGUE)
    for formula in formulas:
        ET.fromstring(as_xml(formula))  # well-formed, every reference closed
        assert "piecewise" not in formula and "True" not in formula, formula  # SymPy's fallbacks


def test_build_is_deterministic(site, tmp_path):
    assert build.main(["--out", str(tmp_path), "--accuracy", str(tmp_path / "absent.json")]) == 0
    assert (tmp_path / "index.html").read_bytes() == site.read_bytes()


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_kink_rows_state_the_generated_codes_value(name):
    """Each kink of the row is on the page with the value the generated backward returns
    there, which is PyTorch's convention (the row's data)."""
    a = activations.BY_NAME[name]
    rows = sections.kink_rows(a)
    assert len(rows) == len(a.kink_values)
    for row, (point, convention) in zip(rows, sorted(a.kink_values.items(), key=lambda kv: float(kv[0]))):
        value = _generated_derivative(name, float(point))
        assert value == pytest.approx(float(convention), rel=1e-15, abs=0)
        shown = sections.exact_number(value)
        assert float(shown) == value
        assert row["value"] == sections.mathml(shown, display="inline"), (name, point)
        assert row["convention"] == sections.mathml(convention, display="inline")


def _generated_derivative(name, x):
    t = torch.tensor([x], dtype=torch.float64)
    result = getattr(generated, name + "_forward")(t)
    return getattr(generated, name + "_backward")(torch.ones_like(t), input=t, result=result).item()


def test_relu_kink_shows_pytorchs_zero_beside_sympys_half():
    (row,) = sections.kink_rows(activations.BY_NAME["relu"])
    assert "<mn>0</mn>" in row["value"] and "<mn>0</mn>" in row["convention"]
    assert "<mfrac><mn>1</mn><mn>2</mn></mfrac>" in row["raw"]
    assert "<mn>0</mn>" in row["left"] and "<mn>1</mn>" in row["right"]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_figure_samples_the_generated_code(name):
    """The SVG's f' curve at x is the generated backward's value: redraw it at a few points."""
    a = activations.BY_NAME[name]
    derivative = figures.derivative_function(a)
    for x in (-5.0, -0.5, 0.25, 3.0):
        assert derivative(x) == _generated_derivative(name, x)
    svg = figures.activation_figure(a)
    ET.fromstring(svg)
    assert svg.count("<polyline") == 2 * (1 + len([k for k in figures.kinks(a.safe_derivative) if -6 < k < 6]))


@pytest.mark.parametrize("name", VECTOR)
def test_vector_layer_shows_its_jacobian_at_three_and_its_vjp(name):
    layer = vector_layers.BY_NAME[name]
    section = sections.vector_section(layer)
    jacobian = ET.fromstring(as_xml(section["jacobian"]["math"]))
    rows = [r for r in jacobian.iter("mtr")]
    assert len(rows) == 3 and all(len(list(r.iter("mtd"))) >= 3 for r in rows)
    assert section["vjp"][0][1] == sections.mathml(rewrites.before_printing(layer.vjp))
    # the curve along input_1 is the generated code's: J_11 of softmax is s(1 - s)
    pairs = figures._vector(name)([0.0, 1.5])
    for x, (r, dr) in zip([0.0, 1.5], pairs):
        t = torch.tensor([[x, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
        out = getattr(generated, name + "_forward")(t)
        (grad,) = torch.autograd.grad(out[0, 0], t)
        assert r == pytest.approx(out[0, 0].item(), rel=1e-15) and dr == pytest.approx(grad[0, 0].item(), rel=1e-12)


def test_a_new_row_appears_with_no_other_change(monkeypatch, tmp_path):
    """A row added to the catalogue, rendered into generated code as `make derive` would, gets
    its own section, curves and code on the page."""
    row = activations.Activation("mine", "x/(2 + exp(-x))", r"\operatorname{mine}")
    monkeypatch.setattr(activations, "ACTIVATIONS", activations.ACTIVATIONS + (row,))
    monkeypatch.setitem(activations.BY_NAME, row.name, row)
    source = render.render()["layers.py"]
    filename = str(tmp_path / "layers.py")
    (tmp_path / "layers.py").write_text(source)
    module = types.ModuleType("generated_layers_with_mine")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    monkeypatch.setattr(sections, "generated", module)
    monkeypatch.setattr(figures, "generated", module)
    assert build.main(["--out", str(tmp_path), "--accuracy", str(tmp_path / "absent.json")]) == 0
    page = (tmp_path / "index.html").read_text()
    mine = re.search(r'<section class="layer" id="layer-mine".*?</section>', page, flags=re.S).group(0)
    assert "def mine_forward(input):" in mine and "def mine_backward(" in mine
    assert mine.count("<polyline") == 2 and mine.count("<math") >= 5


def test_accuracy_slot_shows_the_certifiers_records(tmp_path):
    data = {"about": "Bits of error of f'.", "layers": {"gelu": {"accurate_form": "erfc", "dtypes": {
        "float32": {"torch": {"max": 12.5, "p99": 3.0, "mean": 0.41, "max_at": -0.7518},
                    "autograd": {"max": 9.0, "p99": 2.0, "mean": 0.3, "max_at": 5.0}, "misses": []},
        "float64": {"torch": {"max": 61.9, "p99": 50.0, "mean": 11.5, "max_at": -37.5},
                    "misses": ["mean 11.5 > 1"]}}}}}
    path = tmp_path / "accuracy.json"
    path.write_text(json.dumps(data))
    gelu = accuracy.load(path)["layers"]["gelu"]
    assert gelu["columns"] == ["max", "p99", "mean", "max_at"]
    assert gelu["rows"][0] == (("float32", "torch"), ["12.5", "3", "0.41", "-0.7518"])
    assert gelu["rows"][2] == (("float64", "torch"), ["61.9", "50", "11.5", "-37.5"])
    assert gelu["notes"] == [("accurate_form", "erfc"), ("dtypes/float64/misses", "mean 11.5 > 1")]
    build.main(["--out", str(tmp_path), "--accuracy", str(path)])
    page = (tmp_path / "index.html").read_text()
    section = re.search(r'id="layer-gelu".*?</section>', page, flags=re.S).group(0)
    assert "<td>autograd</td><td>9</td>" in section and "mean 11.5 &gt; 1" in section
    assert "Bits of error of f&#39;." in page
    relu = re.search(r'id="layer-relu".*?</section>', page, flags=re.S).group(0)
    assert "holds no measurement of this layer" in relu


def test_the_certifiers_file_fills_every_measured_layers_slot(tmp_path):
    """accuracy.json as `make accuracy` writes it: each layer it measured shows a table with
    both profiles and autograd."""
    measured = accuracy.load(accuracy.DATA)
    assert measured is not None, "accuracy.json is missing: `make accuracy` writes it"
    assert build.main(["--out", str(tmp_path)]) == 0
    page = (tmp_path / "index.html").read_text()
    for name, table in measured["layers"].items():
        section = re.search(r'id="layer-{}".*?</section>'.format(re.escape(name)), page, flags=re.S).group(0)
        assert '<table class="accuracy">' in section, name
        for source in ("torch", "accurate", "autograd"):
            assert "<td>{}</td>".format(source) in section, (name, source)


def test_accuracy_data_that_is_not_records_of_numbers_is_refused(tmp_path):
    path = tmp_path / "accuracy.json"
    path.write_text(json.dumps({"layers": {"gelu": {"float32": [1, 2]}}}))
    with pytest.raises(accuracy.AccuracyDataError, match="gelu/float32"):
        accuracy.load(path)
    path.write_text(json.dumps({"gelu": {}}))
    with pytest.raises(accuracy.AccuracyDataError, match="under \"layers\""):
        accuracy.load(path)
    path.write_text("{not json")
    with pytest.raises(accuracy.AccuracyDataError, match="not JSON"):
        accuracy.load(path)


# -- in a real browser ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: run `make setup`")
    from selenium.webdriver.chrome.service import Service
    for path in (CHROMIUM, CHROMEDRIVER):
        if not pathlib.Path(path).exists():
            pytest.fail("{} is missing: `make setup` installs Debian's chromium and chromium-driver".format(path))
    profile = tempfile.mkdtemp(prefix="site-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + ("--user-data-dir=" + profile,):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(browser, site):
    browser.get(site.as_uri())
    return browser


def test_page_loads_without_console_errors(page):
    errors = [entry for entry in page.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    assert page.title.startswith("Backpropagation")


def test_every_layer_section_is_displayed(page):
    shown = page.execute_script(
        "return [...document.querySelectorAll('section.layer')]"
        ".filter(s => s.getBoundingClientRect().height > 100).map(s => s.dataset.layer)")
    assert shown == CATALOGUE


def test_every_formula_renders_with_non_zero_size(page):
    sizes = page.execute_script(
        "return [...document.querySelectorAll('math')].map(m => {"
        " const r = m.getBoundingClientRect(); return [m.closest('[data-layer]').dataset.layer, r.width, r.height]; })")
    assert len(sizes) > 5 * len(CATALOGUE)
    empty = [s for s in sizes if not (s[1] > 0 and s[2] > 0)]
    assert empty == []


def test_mathml_is_laid_out_natively(page):
    """A fraction's numerator sits above its denominator, and a Piecewise's rows stack: the
    browser typesets MathML rather than running its text together."""
    bad = page.execute_script(
        "return [...document.querySelectorAll('mfrac, mtable')].filter(e => e.children.length > 1).filter(e => {"
        " const a = e.children[0].getBoundingClientRect(), b = e.children[1].getBoundingClientRect();"
        " return !(a.bottom <= b.top + 1); }).length")
    count = page.execute_script("return document.querySelectorAll('mfrac, mtable').length")
    assert count > 0 and bad == 0


def test_every_elementwise_layer_has_its_curves(page):
    curves = page.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('section.layer')].map(s => ["
        " s.dataset.layer, [...s.querySelectorAll('svg.plot polyline')].map(p => p.getBBox().width)]))")
    for name in ELEMENTWISE + VECTOR:
        # f and f' each span the plot (split at f's kinks, as many pieces as f' has)
        assert len(curves[name]) >= 2 and sum(curves[name]) > 2 * 350, (name, curves[name])


def test_screenshots_are_saved(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    section = page.find_element("id", "layer-relu")
    page.execute_script("arguments[0].scrollIntoView()", section)
    for path, shot in ((SCREENSHOTS / "relu.png", section.screenshot),
                       (SCREENSHOTS / "page.png", page.save_screenshot)):
        assert shot(str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20000


def test_filter_box_hides_other_layers(page):
    box = page.find_element("id", "filter")
    box.send_keys("relu")
    try:
        shown = page.execute_script(
            "return [...document.querySelectorAll('section.layer')].filter(s => !s.hidden).map(s => s.dataset.layer)")
        assert shown == [name for name in CATALOGUE if "relu" in name]
    finally:
        box.clear()
        page.execute_script("document.getElementById('filter').dispatchEvent(new Event('input'))")
