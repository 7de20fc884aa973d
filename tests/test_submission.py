"""Tests of the submission packager (submission/package.py) and its static checks.

The sets under test live under tmp_path: the real generated/mlp_standalone.py (or a one-line
mutation of it), a stand-in gd.py and PDF. The course-style scripts really run (as
subprocesses), so a wrong gradient is caught the way the grader would catch it.
"""
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

PDF = b"%PDF-1.4\n% stand-in theory.pdf for the packager tests\n%%EOF\n"


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
def test_the_real_files_pass_every_check(tmp_path, capsys):
    pdf = REAL_PDF
    if not os.path.exists(pdf):  # theory.pdf not built: a stand-in, so the code is still checked
        pdf = str(tmp_path / "theory.pdf")
        with open(pdf, "wb") as fh:
            fh.write(PDF)
    code = package.main(["--netid", "ab1234", "--mlp", REAL_MLP, "--gd", REAL_GD, "--pdf", pdf,
                         "--out", str(tmp_path / "dist")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with zipfile.ZipFile(tmp_path / "dist" / "ab1234.zip") as zf:
        assert sorted(zf.namelist()) == ["gd.py", "mlp.py", "theory.pdf"]
        with open(REAL_MLP, "rb") as fh:
            assert zf.read("mlp.py") == fh.read()
