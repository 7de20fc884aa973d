"""Derive the torch 1.7.1 API fact table (``submission/torch171_api.json``).

torch 1.7.1 has wheels only for Python <= 3.9, so it cannot be imported here; its API is read
statically from the wheel instead: the ``.pyi`` stubs (``torch/_C/__init__.pyi``,
``torch/_C/_VariableFunctions.pyi``, ``torch/nn/functional.pyi``, ...) and the module-level
bindings of its ``.py`` files (defs, classes, assignments, imports, ``from X import *`` through
``__all__``), following the ``import`` statements that ``import torch`` executes.

Usage::

    python -m submission.torch171_facts [--wheel PATH] [--cache-dir DIR] [--out PATH]

Without ``--wheel`` the wheel is fetched once with ``pip download`` into ``--cache-dir``
(default ``~/.cache/torch171``, outside git). The output is sorted and deterministic, so the
committed table can be regenerated and diffed. The checker (``submission.api_check``) reads
only the table and never needs the network.
"""

import argparse
import ast
import glob
import json
import os
import subprocess
import sys
import zipfile

TORCH_VERSION = "1.7.1"
WHEEL_GLOB = "torch-1.7.1-*.whl"
PIP_DOWNLOAD = [
    "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.8",
    "--platform", "macosx_10_9_x86_64", "torch==1.7.1",
]
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch171_api.json")

# Classes whose attributes the checker needs: public path -> (module, class) sources to union.
CLASS_SOURCES = {
    "torch.Tensor": [("torch._C", "_TensorBase"), ("torch.tensor", "Tensor")],
    "torch.nn.Module": [("torch.nn.modules.module", "Module")],
    "torch.nn.Parameter": [("torch.nn.parameter", "Parameter")],
    "torch.optim.Optimizer": [("torch.optim.optimizer", "Optimizer")],
    "torch.utils.hooks.RemovableHandle": [("torch.utils.hooks", "RemovableHandle")],
    "torch.Size": [("torch._C", "Size")],
    "torch.device": [("torch._C", "device")],
    "torch.dtype": [("torch._C", "dtype")],
    "torch.Generator": [("torch._C", "Generator")],
    "torch.optim.lr_scheduler._LRScheduler": [("torch.optim.lr_scheduler", "_LRScheduler")],
    "torch.autograd.function._ContextMethodMixin": [("torch.autograd.function", "_ContextMethodMixin")],
}


# Tensor members that torch 1.7.1 has at run time (C bindings) but its stubs do not declare.
TENSOR_RUNTIME_ONLY = {"output_nr", "record_stream", "volatile"}
# Newer Tensor members too generic to flag on attribute reads of unknown objects (`path.name`).
NEWER_TOO_GENERIC = {"name", "index", "put"}


def find_or_download_wheel(cache_dir):
    """Return the path of the torch 1.7.1 wheel in cache_dir, downloading it with pip if absent."""
    os.makedirs(cache_dir, exist_ok=True)
    found = sorted(glob.glob(os.path.join(cache_dir, WHEEL_GLOB)))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip"] + PIP_DOWNLOAD + ["-d", cache_dir]
    print("downloading torch 1.7.1 (about 110 MB): " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    found = sorted(glob.glob(os.path.join(cache_dir, WHEEL_GLOB)))
    if not found:
        raise SystemExit("pip download finished but no %s in %s" % (WHEEL_GLOB, cache_dir))
    return found[0]


class WheelSources:
    """The torch package's .py/.pyi sources, by dotted module name, read from the wheel."""

    def __init__(self, wheel_path):
        self.py = {}
        self.pyi = {}
        self.packages = set()
        with zipfile.ZipFile(wheel_path) as zf:
            for name in zf.namelist():
                if not name.startswith("torch/"):
                    continue
                for ext, store in ((".pyi", self.pyi), (".py", self.py)):
                    if name.endswith(ext):
                        mod = name[: -len(ext)].replace("/", ".")
                        if mod.endswith(".__init__"):
                            mod = mod[: -len(".__init__")]
                            self.packages.add(mod)
                        store[mod] = zf.read(name).decode("utf-8", "replace")
                        break
        self.modules = set(self.py) | set(self.pyi)
        self._trees = {}

    def trees(self, mod):
        """Parsed ASTs of the module's .pyi and .py (whichever exist and parse)."""
        if mod not in self._trees:
            out = []
            for store in (self.pyi, self.py):
                if mod in store:
                    try:
                        out.append(ast.parse(store[mod]))
                    except SyntaxError:
                        pass
            self._trees[mod] = out
        return self._trees[mod]


def _resolve_relative(mod, is_package, level, target):
    if level == 0:
        return target or ""
    parts = mod.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    base = ".".join(parts)
    return base + ("." + target if target else "")


def _module_level_statements(body):
    """Statements executed at module level: recurse into if/try/with/for, not into defs."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.For, ast.While, ast.With)):
            for sub in _module_level_statements(node.body + getattr(node, "orelse", [])):
                yield sub
        elif isinstance(node, ast.Try):
            blocks = node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                blocks = blocks + handler.body
            for sub in _module_level_statements(blocks):
                yield sub


def _target_names(target):
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            for name in _target_names(elt):
                yield name
    elif isinstance(target, ast.Starred):
        for name in _target_names(target.value):
            yield name


def _static_all(tree):
    """The module's __all__ if it is built from list literals (= and +=), else None."""
    result = None
    for node in _module_level_statements(tree.body):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            if isinstance(node.value, (ast.List, ast.Tuple)):
                result = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
        elif (isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)
              and node.target.id == "__all__" and isinstance(node.value, (ast.List, ast.Tuple))
              and result is not None):
            result += [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    return result


class Namespaces:
    """Static module namespaces of the torch wheel."""

    def __init__(self, src):
        self.src = src
        self._names = {}
        self._in_progress = set()

    def public_names(self, mod):
        """What `from mod import *` binds."""
        names = self.names(mod)
        for tree in self.src.trees(mod):
            declared = _static_all(tree)
            if declared is not None:
                return set(declared) & names if names else set(declared)
        return {n for n in names if not n.startswith("_")}

    def names(self, mod):
        if mod in self._names:
            return self._names[mod]
        if mod in self._in_progress:
            return set()
        self._in_progress.add(mod)
        names = set()
        is_pkg = mod in self.src.packages
        for tree in self.src.trees(mod):
            for node in _module_level_statements(tree.body):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        names.update(_target_names(target))
                elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                    names.update(_target_names(node.target))
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        names.add(alias.asname or alias.name.split(".")[0])
                elif isinstance(node, ast.ImportFrom):
                    source = _resolve_relative(mod, is_pkg, node.level, node.module)
                    for alias in node.names:
                        if alias.name == "*":
                            if source.startswith("torch"):
                                names |= self.public_names(source)
                        else:
                            names.add(alias.asname or alias.name)
                elif isinstance(node, ast.Delete):
                    for target in node.targets:
                        for name in _target_names(target):
                            names.discard(name)
        if mod == "torch":
            # `for name in dir(_C._VariableFunctions): globals()[name] = ...` and
            # `__all__ += [name for name in dir(_C) if name[0] != '_' and not name.endswith('Base')]`
            # with `from torch._C import *`.
            names |= {n for n in self.names("torch._C._VariableFunctions") if not n.startswith("__")}
            names |= {n for n in self.names("torch._C") if not n.startswith("_")}
        self._in_progress.discard(mod)
        self._names[mod] = names
        return names

    def imported_modules(self, mod):
        """torch modules that importing `mod` executes imports of, directly."""
        out = set()
        is_pkg = mod in self.src.packages
        if mod not in self.src.py:
            return out
        try:
            tree = ast.parse(self.src.py[mod])
        except SyntaxError:
            return out
        for node in _module_level_statements(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    out.add(alias.name)
            elif isinstance(node, ast.ImportFrom):
                source = _resolve_relative(mod, is_pkg, node.level, node.module)
                out.add(source)
                for alias in node.names:
                    out.add(source + "." + alias.name)  # `from pkg import submodule`
        result = set()
        for name in out:
            if name in self.src.modules:
                result.add(name)
        return result

    def loaded_by_import_torch(self):
        """Modules that `import torch` loads (transitively), including their parent packages."""
        seen = set()
        todo = ["torch"]
        while todo:
            mod = todo.pop()
            if mod in seen:
                continue
            seen.add(mod)
            parts = mod.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent not in seen:
                    todo.append(parent)
            todo.extend(sorted(self.imported_modules(mod) - seen))
        return seen

    def class_members(self, mod, cls):
        members = set()
        for tree in self.src.trees(mod):
            for node in _module_level_statements(tree.body):
                if isinstance(node, ast.ClassDef) and node.name == cls:
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                            members.add(item.name)
                            if item.name == "__init__":
                                members |= _self_assigned(item)
                        elif isinstance(item, ast.Assign):
                            for target in item.targets:
                                members.update(_target_names(target))
                        elif isinstance(item, ast.AnnAssign):
                            members.update(_target_names(item.target))
        return members


def _self_assigned(func):
    out = set()
    for node in ast.walk(func):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id == "self"):
                out.add(target.attr)
    return out


def _is_public_module(mod):
    return not any(part.startswith("_") for part in mod.split("."))


def _tensor_members_of_installed_torch(members171):
    """Public Tensor members of the locally installed (newer) torch that 1.7.1 lacks.

    The checker uses them for attribute reads such as `x.mT`, where an unknown name alone would
    cause false alarms (`model.features`). Empty when no torch is importable here.
    """
    try:
        import torch  # noqa: F401  (the installed one, not 1.7.1)
    except Exception:  # pragma: no cover - depends on the machine
        return [], "no torch installed when the table was generated"
    have = set(members171)
    newer = sorted(n for n in dir(torch.Tensor)
                   if not n.startswith("_") and n not in have and n not in NEWER_TOO_GENERIC)
    return newer, "torch %s installed when the table was generated" % torch.__version__.split("+")[0]


def build_facts(wheel_path):
    src = WheelSources(wheel_path)
    ns = Namespaces(src)
    loaded = ns.loaded_by_import_torch()
    # Names are recorded for every public module that `import torch` loads, plus torch._C
    # pieces are folded into `torch` above; other modules are only listed as existing.
    modules_with_names = sorted(m for m in loaded if _is_public_module(m))
    namespaces = {}
    for mod in modules_with_names:
        names = {n for n in ns.names(mod) if not n.startswith("_") or n.startswith("__")}
        namespaces[mod] = sorted(names)
    classes = {}
    for public, sources in sorted(CLASS_SOURCES.items()):
        members = set()
        for mod, cls in sources:
            members |= ns.class_members(mod, cls)
        members |= {"__class__", "__dict__", "__doc__", "__module__"}
        if public == "torch.Tensor":
            members |= TENSOR_RUNTIME_ONLY
        classes[public] = sorted(members)
    newer, newer_source = _tensor_members_of_installed_torch(classes["torch.Tensor"])
    return {
        "tensor_members_after_171": newer,
        "tensor_members_after_171_source": newer_source,
        "about": ("torch %s API facts read statically from %s by submission/torch171_facts.py; "
                  "regenerate with `python -m submission.torch171_facts`; do not edit by hand."
                  % (TORCH_VERSION, os.path.basename(wheel_path))),
        "torch_version": TORCH_VERSION,
        "modules": sorted(m for m in src.modules if _is_public_module(m)),
        "loaded_by_import_torch": sorted(m for m in loaded if _is_public_module(m)),
        "namespaces": namespaces,
        "classes": classes,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", help="path of torch-1.7.1-*.whl (skips the download)")
    parser.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "torch171"),
                        help="where the wheel is downloaded once (default: %(default)s)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="fact table to write (default: %(default)s)")
    args = parser.parse_args(argv)
    wheel = args.wheel or find_or_download_wheel(args.cache_dir)
    facts = build_facts(wheel)
    text = json.dumps(facts, indent=1, sort_keys=True) + "\n"
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    print("wrote %s (%d modules with names, %d Tensor members)"
          % (args.out, len(facts["namespaces"]), len(facts["classes"]["torch.Tensor"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
