"""Tests of the submission packager (submission/package.py) and its static checks.

The sets under test live under tmp_path: the real generated/mlp_standalone.py (or a one-line
mutation of it), a stand-in gd.py and PDF. The course-style scripts really run (as
subprocesses), so a wrong gradient is caught the way the grader would catch it.

gd.py's run as the grader runs it (checks 'gd main' and 'gd ascent') takes the longest, so
it runs only in the tests that ask for it with the `real_gd_checks` fixture (the real gd.py and
its mutants); elsewhere it is replaced by a stub that says so.
"""
import ast
import json
import os
import shutil
import textwrap
import zipfile

import pytest

from submission import api_check, package

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE_TESTS = package.COURSE_TESTS
NETID_RULE = "2 or 3 lowercase letters"

# The real self-contained mlp.py that goes into the zip (make derive writes it); the broken
# variants below are one-line mutations of it.
with open(os.path.join(REPO, "generated", "mlp_standalone.py")) as _fh:
    GOOD_MLP = _fh.read()


def mutate(old, new):
    """GOOD_MLP with one piece replaced; fails loudly if the piece is not there any more."""
    assert old in GOOD_MLP, "mutation anchor {!r} not in generated/mlp_standalone.py".format(old)
    return GOOD_MLP.replace(old, new, 1)


GOOD_GD = textwrap.dedent('''\
    import numpy as np
    import torch
    from torchvision import transforms

    DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
    IMAGENET_MEAN = [0.485, 0.456, 0.406]
    IMAGENET_STD = [0.229, 0.224, 0.225]


    def save_img(image, path):
        transforms.ToPILImage()(image[0].detach().cpu().clamp(0, 1)).save(path)


    def main():
        pass


    def normalize_and_jitter(img, step=32):
        dx, dy = np.random.randint(-step, step - 1, 2)
        return transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)(
            img.roll(dx, -1).roll(dy, -2))


    def gradient_descent(input, model, loss, iterations=256):
        image = input.detach().clone()
        for _ in range(iterations):
            image.requires_grad_(True)
            objective = loss(model(normalize_and_jitter(image)))
            grad, = torch.autograd.grad(objective, image)
            image = (image + 0.01 * grad / (grad.abs().mean() + 1e-12)).clamp(0, 1).detach()
        return image


    def forward_and_return_activation(model, input, module):
        features = []

        def hook(model, input, output):
            features.append(output)

        handle = module.register_forward_hook(hook)
        model(input)
        handle.remove()
        return features[0]
    ''')

def tiny_pdf(pages):
    """A valid PDF, one page per string drawn in Helvetica (pdfinfo parses it, pdftotext
    reads the strings back)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None,
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = "BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text
        objects.append("<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>" % len(objects))
        kids.append("%d 0 R" % len(objects))
    objects[1] = "<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join(kids), len(kids))
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += ("%d 0 obj\n%s\nendobj\n" % (number, body)).encode()
    xref = len(out)
    out += ("xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)).encode()
    out += "".join("%010d 00000 n \n" % offset for offset in offsets).encode()
    out += ("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, xref)).encode()
    return out


# A stand-in theory.pdf: two pages that mention the handout's five questions.
PDF = tiny_pdf(["Theory 1.1 1.2 1.3", "1.4 1.5"])


@pytest.fixture(autouse=True)
def stub_gd_run(request, monkeypatch):
    """Replaces gd.py's run as the grader runs it, except in tests using `real_gd_checks`."""
    if "real_gd_checks" in request.fixturenames:
        return
    monkeypatch.setattr(package, "run_gd_main", lambda *args: None)
    monkeypatch.setattr(package, "judge_gd_main",
                        lambda run, log: log("check gd main: not run in this test"))


@pytest.fixture
def real_gd_checks():
    """Asks stub_gd_run to leave gd.py's run as the grader runs it in place."""


def make_set(tmp_path, mlp=GOOD_MLP, gd=GOOD_GD, pdf=PDF):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "mlp_standalone.py").write_text(mlp)
    (src / "gd.py").write_text(gd)
    (src / "theory.pdf").write_bytes(pdf)
    return src


def course_folder(tmp_path, *names, extra=None):
    """A folder with some of the real course scripts (and optional extra scripts)."""
    folder = tmp_path / "course_tests"
    folder.mkdir(exist_ok=True)
    for name in names:
        (source,) = [os.path.join(d, name) for d in COURSE_TESTS if os.path.exists(os.path.join(d, name))]
        shutil.copy(source, folder / name)
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)
    return folder


def run_packager(tmp_path, src, scripts, netid="ab1234", force=False, extra_args=()):
    argv = ["--netid", netid, "--mlp", str(src / "mlp_standalone.py"), "--gd", str(src / "gd.py"),
            "--pdf", str(src / "theory.pdf"), "--out", str(tmp_path / "dist"),
            "--tests-dir", str(scripts), "--timeout", "60"] + list(extra_args)
    if force:
        argv.append("--force")
    return package.main(argv)


def dist_files(tmp_path):
    dist = tmp_path / "dist"
    return sorted(os.listdir(dist)) if dist.exists() else []


# --------------------------------------------------------------------------------------------
# The packager end to end
# --------------------------------------------------------------------------------------------

def test_good_set_writes_zip_with_exactly_the_three_files(tmp_path, capsys):
    src = make_set(tmp_path)
    # one real course script is enough here; the real gd.py meets course_gd_smoke.py below
    scripts = course_folder(tmp_path, "course_relu_sigmoid_bce.py")
    assert run_packager(tmp_path, src, scripts) == 0
    out = capsys.readouterr().out
    assert "course_relu_sigmoid_bce.py ok (21 lines True" in out
    assert dist_files(tmp_path) == ["ab1234.zip"]  # no partial or backup files
    with zipfile.ZipFile(tmp_path / "dist" / "ab1234.zip") as zf:
        assert sorted(zf.namelist()) == ["gd.py", "mlp.py", "theory.pdf"]
        assert zf.read("mlp.py").decode() == GOOD_MLP  # the standalone file, renamed
        assert zf.read("gd.py").decode() == GOOD_GD
        assert zf.read("theory.pdf") == PDF


def test_wrong_gradient_fails_course_tests_and_leaves_no_zip(tmp_path, capsys):
    # a classic mistake: the MSE gradient without the factor 2
    broken = mutate("return (input - target)/(numel/2)", "return (input - target)/numel")
    src = make_set(tmp_path, mlp=broken)
    scripts = course_folder(tmp_path, "course_relu_identity_mse.py")
    assert run_packager(tmp_path, src, scripts) == 1
    err = capsys.readouterr().err
    assert "check 'course tests' failed" in err and "no zip written" in err
    assert "course_relu_identity_mse.py" in err and "tensor(False)" in err
    assert dist_files(tmp_path) == []


@pytest.mark.parametrize("check, broken, expected", [
    ("python37", mutate("    numel = input.numel()\n", "    if (numel := input.numel()) is None:\n        pass\n"),
     "not valid Python 3.7 syntax"),
    ("python37", mutate("def mse_loss(y, y_hat):", "def mse_loss(y, y_hat, /):"),
     "not valid Python 3.7 syntax"),
    ("torch171", mutate("weight.t()", "weight.mT"), "mT"),
    ("torch171", mutate("torch.sigmoid(input)", "torch.special.expit(input)"),
     "`torch.special` does not exist in torch 1.7.1"),
    ("imports", "import numpy as np\n" + GOOD_MLP, "imports `numpy`"),
    ("imports", mutate("import torch\n", "import torch\nfrom generated import layers\n"),
     "imports `generated`"),
])
def test_broken_mlp_fails_the_named_check_and_leaves_no_zip(tmp_path, capsys, check, broken, expected):
    src = make_set(tmp_path, mlp=broken)
    scripts = course_folder(tmp_path, "course_relu_identity_mse.py")
    assert run_packager(tmp_path, src, scripts) == 1
    err = capsys.readouterr().err
    assert "check '%s' failed" % check in err
    assert expected in err
    assert "mlp.py" in err
    assert dist_files(tmp_path) == []


def test_gd_with_a_non_course_import_fails(tmp_path, capsys):
    src = make_set(tmp_path, gd="import scipy.ndimage\n" + GOOD_GD)
    assert run_packager(tmp_path, src, course_folder(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "check 'imports' failed" in err and "gd.py" in err and "scipy" in err
    assert dist_files(tmp_path) == []


def test_not_a_pdf_fails(tmp_path, capsys):
    src = make_set(tmp_path, pdf=b"\\documentclass{article}")
    assert run_packager(tmp_path, src, course_folder(tmp_path)) == 1
    assert "check 'pdf' failed" in capsys.readouterr().err
    assert dist_files(tmp_path) == []


def test_missing_input_file_is_refused(tmp_path, capsys):
    src = make_set(tmp_path)
    os.remove(src / "theory.pdf")
    assert run_packager(tmp_path, src, course_folder(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "theory.pdf" in err and "make theory" in err
    assert dist_files(tmp_path) == []


@pytest.mark.parametrize("netid", [None, "", "AB1234", "ab1234.zip", "a1234", "abcd1234", "ab",
                                   "1234", " ab1234", "ab1234 ", "ab-1234", "ab1234@nyu.edu",
                                   "../ab1234", "ab12x"])
def test_bad_netid_is_refused_with_the_rule(tmp_path, capsys, netid):
    src = make_set(tmp_path)
    argv = ["--mlp", str(src / "mlp_standalone.py"), "--gd", str(src / "gd.py"),
            "--pdf", str(src / "theory.pdf"), "--out", str(tmp_path / "dist"),
            "--tests-dir", str(course_folder(tmp_path, extra=TRIVIAL))]
    if netid is not None:
        argv = ["--netid", netid] + argv
    assert package.main(argv) == 2
    err = capsys.readouterr().err
    assert NETID_RULE in err and "ab1234" in err
    assert dist_files(tmp_path) == []


@pytest.mark.parametrize("netid", ["ab1234", "abc123", "xy12", "jd5", "abc12345"])
def test_good_netids_are_accepted(netid):
    assert package.validate_netid(netid) == netid


def test_hints_for_common_netid_mistakes():
    for netid, hint in [("AB1234", "use lowercase: ab1234"), ("ab1234.zip", "without .zip"),
                        (" ab1234", "spaces"), ("ab1234@nyu.edu", "not the e-mail")]:
        with pytest.raises(package.BadInput, match=hint):
            package.validate_netid(netid)


TRIVIAL = {"print_true.py": "print(True)\n"}


def test_existing_zip_is_not_overwritten_without_force(tmp_path, capsys):
    src = make_set(tmp_path)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "ab1234.zip").write_bytes(b"old zip")
    assert run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL)) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert (tmp_path / "dist" / "ab1234.zip").read_bytes() == b"old zip"
    assert dist_files(tmp_path) == ["ab1234.zip"]


def test_force_replaces_and_keeps_a_timestamped_backup(tmp_path, capsys):
    src = make_set(tmp_path)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "ab1234.zip").write_bytes(b"old zip")
    assert run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL), force=True) == 0
    out = capsys.readouterr().out
    files = dist_files(tmp_path)
    backups = [f for f in files if f != "ab1234.zip"]
    assert len(files) == 2 and len(backups) == 1
    assert backups[0].startswith("ab1234.zip.") and backups[0].endswith(".bak")
    assert "kept the previous zip as" in out and backups[0] in out
    assert (tmp_path / "dist" / backups[0]).read_bytes() == b"old zip"
    with zipfile.ZipFile(tmp_path / "dist" / "ab1234.zip") as zf:
        assert sorted(zf.namelist()) == ["gd.py", "mlp.py", "theory.pdf"]


def test_force_with_a_failing_check_keeps_the_old_zip(tmp_path, capsys):
    src = make_set(tmp_path, mlp="import numpy\n" + GOOD_MLP)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "ab1234.zip").write_bytes(b"old zip")
    assert run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL), force=True) == 1
    assert "check 'imports' failed" in capsys.readouterr().err
    assert dist_files(tmp_path) == ["ab1234.zip"]
    assert (tmp_path / "dist" / "ab1234.zip").read_bytes() == b"old zip"


@pytest.mark.parametrize("script, problem", [
    ("print(True)\nprint(False)\n", "line 2 printed 'False'"),
    ("print('tensor(True)')\nprint('ok')\n", "line 2 printed 'ok'"),
    ("pass\n", "printed nothing"),
    ("print(True)\nraise SystemExit(3)\n", "exit status 3"),
    ("import mlp\nprint(True)\n", None),  # the zip's mlp.py is importable from the folder
    ("import os\nprint(sorted(os.listdir('.')) == ['check.py', 'gd.py', 'mlp.py', 'theory.pdf'])\n",
     None),  # the folder holds only the three files and the script
    ("import time\ntime.sleep(30)\n", "timed out"),
])
def test_script_output_rules(tmp_path, script, problem):
    src = make_set(tmp_path, mlp="X = 1\n", gd="Y = 2\n")
    zip_path = tmp_path / "t.zip"
    package.write_zip(str(zip_path), {"theory.pdf": PDF, "mlp.py": b"X = 1\n", "gd.py": b"Y = 2\n"})
    script_path = tmp_path / "check.py"
    script_path.write_text(script)
    timeout = 2 if "sleep" in script else 30
    name, found, out, err, _ = package.run_script(str(script_path), str(zip_path),
                                                  package.sys.executable, timeout)
    assert name == "check.py"
    if problem is None:
        assert found is None, (found, out, err)
    else:
        assert found is not None and problem in found
    assert src.exists()


# --------------------------------------------------------------------------------------------
# The static checks
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("snippet, missing", [
    ("import torch\ny = torch.special.erf(torch.ones(2))\n", "torch.special"),
    ("import torch\ng = torch.func.grad(lambda t: t.sum())\n", "torch.func"),
    ("import torch\nf = torch.vmap(torch.sin)\n", "torch.vmap"),
    ("import torch\nf = torch.compile(torch.sin)\n", "torch.compile"),
    ("import torch\nwith torch.inference_mode():\n    pass\n", "torch.inference_mode"),
    ("import torch\nx = torch.ones(2, 2)\ny = x.mT\n", ".mT"),
    ("import torch\ny = torch.ones(2, 2).mT\n", ".mT"),
    ("import torch\ny = torch.Tensor.mT\n", "torch.Tensor.mT"),
    ("import torch\nx = torch.ones(2)\ny = x.nanmean()\n", ".nanmean()"),
    ("import torch\nx = torch.ones(2)\ny = x.frobnicate()\n", ".frobnicate()"),
    ("import torch.nn.functional as F\ny = F.mish(1)\n", "torch.nn.functional.mish"),
    ("from torch.nn import functional as F\ny = F.mish(1)\n", "torch.nn.functional.mish"),
    ("import torch.nn as nn\nm = nn.Mish()\n", "torch.nn.Mish"),
    ("from torch import nn\nm = nn.Mish()\n", "torch.nn.Mish"),
    ("from torch import vmap\n", "torch.vmap"),
    ("import torch.special\n", "torch.special"),
    ("from torch.special import erf\n", "torch.special"),
    ("import torch\ny = torch.fft.fft(torch.ones(4))\n", "import torch.fft"),
    ("import torch\ny = torch.linalg.vector_norm(torch.ones(4))\n", "torch.linalg.vector_norm"),
    ("import torch as T\ny = T.special.erf(T.ones(2))\n", "torch.special"),
    ("import torch\ndef f(x):\n    return x.mm(x).clamp(min=0).mT\n", ".mT"),
])
def test_api_checker_flags_apis_missing_in_torch_171(snippet, missing):
    problems = api_check.check_torch_api("snippet.py", snippet)
    assert problems, snippet
    assert any(missing in p for p in problems), problems


ORDINARY_CODE = textwrap.dedent('''\
    import os
    import re
    import numpy as np
    import torch
    import torch.fft
    import torch.nn as nn
    import torch.nn.functional as F
    from collections import OrderedDict
    from torchvision import transforms
    from PIL import Image


    class Net(nn.Module):
        def __init__(self):
            super(Net, self).__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))

        def summary(self):
            return ", ".join("{}={}".format(k, v.shape) for k, v in self.state_dict().items())


    def run(path):
        model = Net()
        model.eval()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 1)
        x = torch.randn(1, 3, 8, 8, requires_grad=True)
        handle = model.features[1].register_forward_hook(lambda m, i, o: None)
        out = model(x).softmax(1)[0, 1]
        out.backward()
        handle.remove()
        opt.step()
        opt.zero_grad()
        sched.step()
        lr = sched.get_last_lr()
        g = x.grad.data.clone().detach().abs().mean().item()
        arr = x.detach().cpu().numpy()
        arr = (arr * 255).round().astype(np.uint8)
        img = Image.fromarray(arr[0, 0])
        img.save(os.path.join(path, "x.png"))
        transforms.ToPILImage()(x[0].detach()).save(path)
        words = re.split(",", "a,b")
        words.append("c")
        d = OrderedDict()
        d.setdefault("k", []).extend(words)
        spectrum = torch.fft.fft(torch.ones(4))
        with torch.no_grad():
            y = torch.clamp(x, 0, 1).t_() if x.dim() == 2 else x.permute(0, 2, 3, 1)
        z = x.mm(x.t()) if x.dim() == 2 else x.view(-1).addmm if False else x.T
        text = "{:.3f}".format(g).strip().upper()
        with open(os.path.join(path, "log.txt"), "w") as fh:
            fh.write(text)
        return y.shape, lr, d.items(), spectrum, z, model.summary(), torch.float32
    ''')


def test_api_checker_accepts_ordinary_code_and_the_stand_ins():
    assert api_check.check_torch_api("ordinary.py", ORDINARY_CODE) == []
    assert api_check.check_torch_api("mlp.py", GOOD_MLP) == []
    assert api_check.check_torch_api("gd.py", GOOD_GD) == []


@pytest.mark.parametrize("snippet, expected", [
    ("if (n := 3):\n    pass\n", "not valid Python 3.7"),
    ("def f(a, /):\n    pass\n", "not valid Python 3.7"),
    ("x = 1\ns = f'{x=}'\n", "3.8"),
    ("def f(x: list[int]) -> int:\n    return 1\n", "typing.List"),
    ("def f(x: int | None):\n    return 1\n", "typing.Union"),
    ("import math\ny = math.prod([1, 2])\n", "math.prod needs Python 3.8"),
    ("from functools import cache\n", "functools.cache needs Python 3.9"),
    ("y = 'ab'.removeprefix('a')\n", "3.9"),
])
def test_python37_check_flags_newer_python(snippet, expected):
    problems = api_check.check_python37("snippet.py", snippet)
    assert problems and any(expected in p for p in problems), problems


def test_python37_check_accepts_37_code():
    ok = "from __future__ import annotations\ndef f(x: list[int]) -> int | None:\n    return f'{x}'\n"
    assert api_check.check_python37("ok.py", ok) == []
    assert api_check.check_python37("mlp.py", GOOD_MLP) == []


def test_import_check():
    assert api_check.check_imports("mlp.py", GOOD_MLP, {"torch"}) == []
    assert api_check.check_imports("gd.py", GOOD_GD, {"numpy", "torch", "torchvision"}) == []
    assert api_check.check_imports("m.py", "import os, sys\nfrom collections import abc\n",
                                   {"torch"}) == []
    for bad in ["import numpy", "from scipy import ndimage", "from . import layers",
                "import zoneinfo", "def f():\n    import sympy\n"]:
        assert api_check.check_imports("m.py", bad + "\n", {"torch"}), bad


def test_fact_table_is_sorted_and_knows_the_basics():
    with open(api_check.FACTS_PATH, encoding="utf-8") as fh:
        facts = json.load(fh)
    assert facts["torch_version"] == "1.7.1"
    for key in ("modules", "loaded_by_import_torch"):
        assert facts[key] == sorted(facts[key])
    for table in (facts["namespaces"], facts["classes"]):
        for names in table.values():
            assert names == sorted(names)
    torch_names = set(facts["namespaces"]["torch"])
    assert {"mm", "matmul", "sigmoid", "relu", "randn", "zeros_like", "no_grad", "float32"} <= torch_names
    assert not {"vmap", "compile", "inference_mode", "special", "func"} & torch_names
    tensor = set(facts["classes"]["torch.Tensor"])
    assert {"mm", "t", "clamp", "sum", "grad", "retain_grad", "T", "data"} <= tensor
    assert "mT" not in tensor and "mT" in facts["tensor_members_after_171"]
    assert "mish" not in facts["namespaces"]["torch.nn.functional"]
    assert "GELU" in facts["namespaces"]["torch.nn"] and "Mish" not in facts["namespaces"]["torch.nn"]


def test_fact_table_regenerates_identically_from_the_cached_wheel(tmp_path):
    from submission import torch171_facts
    cache = os.path.join(os.path.expanduser("~"), ".cache", "torch171")
    wheels = sorted(f for f in os.listdir(cache) if f.startswith("torch-1.7.1-")) if os.path.isdir(cache) else []
    if not wheels:
        pytest.skip("torch 1.7.1 wheel not cached (python -m submission.torch171_facts fetches it)")
    out = tmp_path / "facts.json"
    torch171_facts.main(["--wheel", os.path.join(cache, wheels[0]), "--out", str(out)])
    with open(api_check.FACTS_PATH, encoding="utf-8") as fh:
        committed = json.load(fh)
    regenerated = json.loads(out.read_text())
    # the newer-torch list depends on the torch installed here; the 1.7.1 facts must not
    for key in ("tensor_members_after_171", "tensor_members_after_171_source"):
        committed.pop(key)
        regenerated.pop(key)
    assert regenerated == committed


# --------------------------------------------------------------------------------------------
# The real files of this repository
# --------------------------------------------------------------------------------------------

REAL_MLP = os.path.join(REPO, "generated", "mlp_standalone.py")
REAL_GD = os.path.join(REPO, "gd.py")
REAL_PDF = os.path.join(REPO, "theory", "build", "theory.pdf")


@pytest.mark.skipif(not (os.path.exists(REAL_MLP) and os.path.exists(REAL_GD)),
                    reason="generated/mlp_standalone.py or gd.py not there yet")
def test_the_real_files_pass_every_check(tmp_path, capsys, real_gd_checks):
    pdf = REAL_PDF
    if not os.path.exists(pdf):  # theory.pdf not built: a stand-in, so the code is still checked
        pdf = str(tmp_path / "theory.pdf")
        with open(pdf, "wb") as fh:
            fh.write(PDF)
    code = package.main(["--netid", "ab1234", "--mlp", REAL_MLP, "--gd", REAL_GD, "--pdf", pdf,
                         "--out", str(tmp_path / "dist")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "check gd main: ok" in captured.out and "check gd ascent: ok" in captured.out
    with zipfile.ZipFile(tmp_path / "dist" / "ab1234.zip") as zf:
        assert sorted(zf.namelist()) == ["gd.py", "mlp.py", "theory.pdf"]
        with open(REAL_MLP, "rb") as fh:
            assert zf.read("mlp.py") == fh.read()


# --------------------------------------------------------------------------------------------
# gd.py's run as the grader runs it: the real gd.py, and mutants of it that must not be zipped
# --------------------------------------------------------------------------------------------

with open(REAL_GD) as _fh:
    REAL_GD_TEXT = _fh.read()


def insert_first(source, function, statement):
    """source with `statement` as the first statement of module-level `function` (after its
    docstring); {0}, {1}, {2} in it stand for the function's first three parameter names."""
    tree = ast.parse(source)
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    body = node.body
    has_doc = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
               and isinstance(body[0].value.value, str) and len(body) > 1)
    first = body[1] if has_doc else body[0]
    lines = source.splitlines(True)
    indent = lines[first.lineno - 1][:first.col_offset]
    names = [a.arg for a in node.args.args] + ["", "", ""]
    lines.insert(first.lineno - 1, indent + statement.format(*names) + "\n")
    return "".join(lines)


def replace_all(source, old, new):
    assert old in source, "mutation anchor {!r} not in gd.py".format(old)
    return source.replace(old, new)


GD_MUTANTS = {
    # gradient_descent does nothing: the image comes back as it went in
    "no-op": (lambda: insert_first(REAL_GD_TEXT, "gradient_descent", "return {0}.detach()"),
              "gd ascent", "needs at least"),
    # the step's sign flipped: the image is pushed away from the class
    "descent": (lambda: insert_first(REAL_GD_TEXT, "gradient_descent",
                                     "{2} = (lambda f: lambda t: -f(t))({2})"),
                "gd ascent", "needs at least"),
    # python gd.py crashes
    "NameError in main": (lambda: insert_first(REAL_GD_TEXT, "main", "print(undefined_in_main)"),
                          "gd main", "undefined_in_main"),
    # the grader finds no probabilities to read
    "no ANSWER lines": (lambda: replace_all(REAL_GD_TEXT, "ANSWER_FOR_LABEL_", "RESULT_FOR_LABEL_"),
                        "gd main", "printed no ANSWER_FOR_LABEL_"),
}


@pytest.mark.parametrize("mutant", sorted(GD_MUTANTS))
def test_broken_gd_fails_the_named_check_and_leaves_no_zip(tmp_path, capsys, real_gd_checks, mutant):
    make_gd, check, expected = GD_MUTANTS[mutant]
    src = make_set(tmp_path, gd=make_gd())
    assert run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL)) == 1
    err = capsys.readouterr().err
    assert "check '%s' failed" % check in err and "no zip written" in err, err
    assert expected in err, err
    assert dist_files(tmp_path) == []


def test_gd_ascent_check_judges_the_graded_numbers(real_gd_checks):
    logged = []
    run = {"problem": None, "seconds": 1.0, "stderr": "",
           "stdout": "ANSWER_FOR_LABEL_0: 0.97\nANSWER_FOR_LABEL_1: 0.5\n",
           "report": {"error": None, "calls": [
               {"index": 0, "input_shape": [1, 3, 8, 8], "output_shape": [1, 3, 8, 8],
                "finite": True, "target": 0, "start": 0.1, "end": 0.99},
               {"index": 1, "input_shape": [1, 3, 8, 8], "output_shape": [1, 3, 8, 8],
                "finite": True, "target": 1, "start": 0.2, "end": 0.99}]}}
    with pytest.raises(package.CheckFailed) as failed:  # class 1: 0.5 < 0.2 + 0.5 * 0.8
        package.judge_gd_main(run, logged.append)
    assert failed.value.check == "gd ascent" and "class 1: probability 0.2000" in failed.value.details
    assert "class 0" not in failed.value.details
    run["stdout"] = "ANSWER_FOR_LABEL_0: 0.97\nANSWER_FOR_LABEL_1: 0.61\n"
    package.judge_gd_main(run, logged.append)
    assert logged[-1].startswith("check gd ascent: ok (2 calls; lowest probability reached 0.6100")
    run["report"]["calls"][0]["end"] = 0.1  # graded high by chance (training mode), unchanged in eval mode
    with pytest.raises(package.CheckFailed) as failed:
        package.judge_gd_main(run, logged.append)
    assert ("class 0: probability 0.1000 at the start; after gradient_descent 0.1000 in eval mode, "
            "0.9700 graded") in failed.value.details
    run["report"]["calls"][0]["end"] = 0.99
    run["stdout"] = "ANSWER_FOR_LABEL_1: 0.99\n"  # class 0 was visualized but not reported
    with pytest.raises(package.CheckFailed) as failed:
        package.judge_gd_main(run, logged.append)
    assert "class 0: gradient_descent was called for it, but main() printed no ANSWER_FOR_LABEL_0" \
        in failed.value.details
    run["stdout"] = "ANSWER_FOR_LABEL_0: nan\nANSWER_FOR_LABEL_1: 0.61\n"
    with pytest.raises(package.CheckFailed) as failed:
        package.judge_gd_main(run, logged.append)
    assert failed.value.check == "gd main" and "not a probability" in failed.value.details
    run["stdout"], run["report"]["calls"] = "ANSWER_FOR_LABEL_0: 0.9\n", []
    with pytest.raises(package.CheckFailed) as failed:
        package.judge_gd_main(run, logged.append)
    assert failed.value.check == "gd ascent" and "never called gradient_descent" in failed.value.details


def test_missing_bundled_model_is_refused(tmp_path, capsys):
    src = make_set(tmp_path)
    code = run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL),
                        extra_args=["--gd-model", str(tmp_path / "nowhere.pt")])
    assert code == 2
    assert "bundled model" in capsys.readouterr().err and dist_files(tmp_path) == []


# --------------------------------------------------------------------------------------------
# theory.pdf: poppler must read it
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pdf, expected", [
    (b"%PDF-1.5\n" + bytes(range(256)) * 4, "pdfinfo cannot read it"),  # garbage after the magic
    (PDF[: len(PDF) // 2], "pdfinfo cannot read it"),  # cut off
    (tiny_pdf(["1.1 1.2 1.3 1.5"]), "does not mention question(s) 1.4"),
    (tiny_pdf([""]), "does not mention question(s) 1.1, 1.2, 1.3, 1.4, 1.5"),
])
def test_pdf_that_poppler_cannot_read_fails(tmp_path, capsys, pdf, expected):
    src = make_set(tmp_path, pdf=pdf)
    assert run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL)) == 1
    err = capsys.readouterr().err
    assert "check 'pdf' failed" in err and expected in err, err
    assert dist_files(tmp_path) == []


def test_pdf_page_count_must_match_the_latex_log(tmp_path, capsys):
    src = make_set(tmp_path)
    (src / "theory.log").write_text("Output written on build/theory.pdf (3 pages, 1234 bytes).\n")
    assert run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL)) == 1
    assert "has 2 pages but LaTeX wrote 3" in capsys.readouterr().err
    (src / "theory.log").write_text("Output written on build/theory.pdf (2 pages, 1234 bytes).\n")
    assert run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL)) == 0


# --------------------------------------------------------------------------------------------
# Problems in the zip's mlp.py are reported at the line the user edits
# --------------------------------------------------------------------------------------------

def test_python37_problem_is_reported_at_the_line_of_mlp_py(tmp_path, capsys):
    with open(os.path.join(REPO, "mlp.py")) as fh:
        source = fh.read()
    anchor = "    _check_pair(y, y_hat)\n"
    assert source.count(anchor) >= 1 and anchor in GOOD_MLP
    walrus = "    if (pair := _check_pair(y, y_hat)):\n        pass\n"
    edited = source.replace(anchor, walrus, 1)
    user_line = edited.splitlines().index(walrus.splitlines()[0]) + 1
    rendered = GOOD_MLP.replace(anchor, walrus, 1)  # what make derive renders from it
    zip_line = rendered.splitlines().index(walrus.splitlines()[0]) + 1
    assert zip_line != user_line
    src = make_set(tmp_path, mlp=rendered)
    (src / "mlp.py").write_text(edited)
    code = run_packager(tmp_path, src, course_folder(tmp_path, extra=TRIVIAL), extra_args=[
        "--mlp-source", str(src / "mlp.py"),
        "--mlp-source", os.path.join(REPO, "generated", "layers.py")])
    assert code == 1
    err = capsys.readouterr().err
    assert "check 'python37' failed" in err
    assert "mlp.py:%d (line %d of the mlp.py built from it)" % (user_line, zip_line) in err, err


def test_line_origins_place_inlined_layers_lines():
    from derive import source_map
    with open(os.path.join(REPO, "generated", "layers.py")) as fh:
        layers = fh.read()
    with open(os.path.join(REPO, "mlp.py")) as fh:
        source = fh.read()
    origins = source_map.line_origins(GOOD_MLP, {"mlp.py": source, "generated/layers.py": layers})
    rendered = GOOD_MLP.splitlines()
    for line, (name, number) in origins.items():
        text = (source if name == "mlp.py" else layers).splitlines()[number - 1]
        assert rendered[line - 1].rstrip() == text.rstrip()
    def_line = next(i for i, t in enumerate(rendered, 1) if t.startswith("def relu_backward("))
    assert origins[def_line][0] == "generated/layers.py"
    class_line = next(i for i, t in enumerate(rendered, 1) if t.startswith("class MLP"))
    assert origins[class_line] == ("mlp.py", source.splitlines().index("class MLP:") + 1)
