"""Static checks of the submitted Python files: Python 3.7 syntax, allowed imports, torch 1.7.1 API.

Each ``check_*`` function takes a file name (for messages) and its source text and returns a
list of human-readable problems, empty when the file passes. The torch check reads only the
committed fact table ``torch171_api.json`` (see ``torch171_facts.py``); no network, no torch
1.7.1 install.

How the torch check decides (the aim: catch APIs newer than 1.7.1 without false alarms):

* ``import torch.x`` / ``from torch.x import y``: the module must exist in the 1.7.1 wheel and
  ``y`` must be one of its names (or a submodule).
* Attribute chains rooted at a torch alias (``torch.special.erf``, ``F.mish``, ``nn.Mish``,
  ``torch.Tensor.mT``) are resolved name by name through the 1.7.1 namespaces; the first name
  that does not exist is reported. A submodule counts only if ``import torch`` loads it in 1.7.1
  or the file imports it explicitly.
* Method calls on anything else (``x.mm(w)``, ``self.cache['h'].clamp(min=0)``) must name a
  member of a 1.7.1 torch class (Tensor, nn.Module, Optimizer, ...), a method of a builtin or
  io type, or a name the file defines itself (def/class/attribute assignment). Receivers that
  come from a non-torch import (numpy, torchvision, PIL, os ...), from ``.numpy()``/``.tolist()``
  or from a literal are skipped: they are not tensors.
* Plain attribute reads on such objects (``x.mT``) are reported when the name is a Tensor
  member only in newer torch (listed in the table); other unknown names are not reported,
  since ``model.features`` or ``args.path`` are ordinary.
"""

import ast
import io
import json
import os
import re
import sys
import tokenize

FACTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch171_api.json")

# Standard-library modules added after Python 3.7 (they would not import there).
STDLIB_AFTER_37 = {"graphlib", "zoneinfo", "tomllib"}

# A few standard-library APIs newer than Python 3.7 that are easy to reach for.
STDLIB_ATTRS_AFTER_37 = {
    ("math", "prod"): "3.8", ("math", "isqrt"): "3.8", ("math", "dist"): "3.8",
    ("math", "comb"): "3.8", ("math", "perm"): "3.8", ("math", "lcm"): "3.9",
    ("math", "nextafter"): "3.9", ("math", "ulp"): "3.9", ("functools", "cache"): "3.9",
    ("functools", "cached_property"): "3.8", ("itertools", "pairwise"): "3.10",
    ("typing", "Literal"): "3.8", ("typing", "Final"): "3.8", ("typing", "Protocol"): "3.8",
    ("typing", "TypedDict"): "3.8",
}
STR_METHODS_AFTER_37 = {"removeprefix": "3.9", "removesuffix": "3.9"}
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}

_FACTS = None


def load_facts(path=FACTS_PATH):
    global _FACTS
    if path != FACTS_PATH:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    if _FACTS is None:
        with open(path, encoding="utf-8") as fh:
            _FACTS = json.load(fh)
    return _FACTS


def _where(name, node):
    return "%s:%d:%d" % (name, getattr(node, "lineno", 0), getattr(node, "col_offset", 0) + 1)


def _text(src, node):
    try:
        seg = ast.get_source_segment(src, node)
    except Exception:
        seg = None
    return seg if seg else ast.dump(node)[:80]


# --------------------------------------------------------------------------------------------
# Python 3.7
# --------------------------------------------------------------------------------------------

_FSTRING_EQ = re.compile(r"\{[^{}!:=<>]*[^{}!:=<>\s]\s*=\s*(![rsa])?\s*(:[^{}]*)?\}")


def _fstring_texts(src):
    """Source text of every f-string literal (Python 3.11: STRING tokens; 3.12+: FSTRING_*)."""
    lines = src.splitlines(True)

    def slice_(start, end):
        (sr, sc), (er, ec) = start, end
        if sr == er:
            return lines[sr - 1][sc:ec], sr
        return lines[sr - 1][sc:] + "".join(lines[sr:er - 1]) + lines[er - 1][:ec], sr

    fstart = getattr(tokenize, "FSTRING_START", None)
    fend = getattr(tokenize, "FSTRING_END", None)
    depth_start = []
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.STRING:
            prefix = re.match(r"[A-Za-z]*", tok.string).group(0).lower()
            if "f" in prefix:
                yield tok.string, tok.start[0]
        elif fstart is not None and tok.type == fstart:
            depth_start.append(tok.start)
        elif fend is not None and tok.type == fend and depth_start:
            start = depth_start.pop()
            if not depth_start:
                yield slice_(start, tok.end)


def _annotation_nodes(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for arg in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
                if arg is not None and arg.annotation is not None:
                    yield arg.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def check_python37(name, src):
    """Parses with the Python 3.7 grammar, plus run-time constructs that 3.7 rejects."""
    try:
        tree = ast.parse(src, filename=name, feature_version=(3, 7))
    except SyntaxError as exc:
        return ["%s:%s: not valid Python 3.7 syntax: %s" % (name, exc.lineno, exc.msg)]
    problems = []
    try:
        for text, line in _fstring_texts(src):
            if _FSTRING_EQ.search(text):
                problems.append("%s:%d: f-string '=' specifier (%s) needs Python 3.8"
                                % (name, line, text.strip()[:60]))
    except (tokenize.TokenError, SyntaxError):
        pass
    future_annotations = any(
        isinstance(n, ast.ImportFrom) and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names) for n in tree.body)
    if not future_annotations:
        for ann in _annotation_nodes(tree):
            for sub in ast.walk(ann):
                if (isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name)
                        and sub.value.id in BUILTIN_GENERICS):
                    problems.append("%s: annotation %s needs Python 3.9 (use typing.%s)"
                                    % (_where(name, sub), _text(src, sub), sub.value.id.title()))
                elif isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitOr):
                    problems.append("%s: annotation %s needs Python 3.10 (use typing.Union)"
                                    % (_where(name, sub), _text(src, sub)))
    std_alias = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                std_alias[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                version = STDLIB_ATTRS_AFTER_37.get((node.module, alias.name))
                if version:
                    problems.append("%s: %s.%s needs Python %s"
                                    % (_where(name, node), node.module, alias.name, version))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            mod = std_alias.get(node.value.id)
            version = STDLIB_ATTRS_AFTER_37.get((mod, node.attr)) if mod else None
            if version:
                problems.append("%s: %s.%s needs Python %s" % (_where(name, node), mod, node.attr, version))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in STR_METHODS_AFTER_37):
            problems.append("%s: str.%s() needs Python %s"
                            % (_where(name, node), node.func.attr, STR_METHODS_AFTER_37[node.func.attr]))
    return problems


# --------------------------------------------------------------------------------------------
# Imports
# --------------------------------------------------------------------------------------------

def stdlib_modules():
    names = set(getattr(sys, "stdlib_module_names", ()))
    if not names:  # Python < 3.10: fall back to the builtin list plus the usual suspects
        names = set(sys.builtin_module_names) | {
            "abc", "argparse", "collections", "copy", "dataclasses", "functools", "itertools",
            "math", "os", "random", "re", "sys", "time", "typing", "warnings", "__future__"}
    return names - STDLIB_AFTER_37


def check_imports(name, src, allowed_third_party):
    """Every import statement names the standard library or one of allowed_third_party."""
    tree = ast.parse(src, filename=name)
    std = stdlib_modules()
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append("%s: relative import `%s` (the file must stand alone)"
                                % (_where(name, node), _text(src, node)))
                continue
            mods = [node.module]
        else:
            continue
        for mod in mods:
            top = mod.split(".")[0]
            if top not in std and top not in allowed_third_party:
                problems.append("%s: imports `%s`; allowed: %s and the Python standard library"
                                % (_where(name, node), mod, ", ".join(sorted(allowed_third_party))))
    return problems


# --------------------------------------------------------------------------------------------
# torch 1.7.1 API
# --------------------------------------------------------------------------------------------

FOREIGN = object()  # a receiver known not to be a torch object
FOREIGN_PRODUCING_METHODS = {"numpy", "tolist"}
NON_TORCH_BUILTINS = {"str", "repr", "len", "int", "float", "list", "dict", "set", "tuple",
                      "open", "range", "enumerate", "zip", "sorted", "bool", "format"}


def _builtin_method_names():
    names = set()
    kinds = [str, bytes, bytearray, list, dict, set, frozenset, tuple, int, float, complex, bool,
             object, type, range, slice, memoryview, io.StringIO, io.BytesIO, io.TextIOWrapper,
             io.BufferedReader, io.BufferedWriter, BaseException]
    for kind in kinds:
        names.update(dir(kind))
    names.update({"send", "throw", "close"})  # generators
    names.update(dict().keys().__class__.__dict__)
    return {n for n in names if not n.startswith("__")}


def _flatten_chain(node):
    """`a.b.c` -> ('a', ['b', 'c']); None when the chain is not Names and Attributes only."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, list(reversed(attrs))
    return None


class _TorchApiChecker(ast.NodeVisitor):
    def __init__(self, name, src, facts):
        self.name = name
        self.src = src
        self.facts = facts
        self.modules = set(facts["modules"])
        self.loaded = set(facts["loaded_by_import_torch"])
        self.namespaces = {k: set(v) for k, v in facts["namespaces"].items()}
        self.classes = {k: set(v) for k, v in facts["classes"].items()}
        self.tensor_newer = set(facts.get("tensor_members_after_171", ()))
        self.problems = []
        self.aliases = {}          # local name -> dotted torch path, or FOREIGN
        self.explicit = set()      # torch modules the file imports explicitly
        self.defined = set()       # def/class names and attributes the file assigns
        self.name_scope = {}
        self.call_funcs = set()
        self.allowed_methods = _builtin_method_names()
        for members in self.classes.values():
            self.allowed_methods |= members

    # ---- reporting ----
    def report(self, node, message):
        self.problems.append("%s: %s" % (_where(self.name, node), message))

    # ---- pre-pass ----
    def prepare(self, tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    if top == "torch":
                        self.explicit.add(alias.name)
                        if alias.asname:
                            self.aliases[alias.asname] = alias.name
                        else:
                            self.aliases["torch"] = "torch"
                    else:
                        self.aliases[alias.asname or top] = FOREIGN
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                for alias in node.names:
                    local = alias.asname or alias.name
                    if node.level == 0 and mod.split(".")[0] == "torch" and alias.name != "*":
                        full = mod + "." + alias.name
                        self.aliases[local] = full
                        if full in self.modules:
                            self.explicit.add(full)
                    elif alias.name != "*":
                        self.aliases[local] = FOREIGN
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defined.add(node.name)
            elif isinstance(node, ast.Call):
                self.call_funcs.add(id(node.func))
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Attribute):
                            self.defined.add(sub.attr)
        self._index_scopes(tree, None)

    def _index_scopes(self, scope_node, parent_scope):
        """Records, per function/module scope, the assignments to plain names in source order,
        and the scope of every Name node, so that a use can find the value last assigned."""
        scope = {"parent": parent_scope, "assign": []}
        todo = list(ast.iter_child_nodes(scope_node))
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for default in node.args.defaults + node.args.kw_defaults:
                    if default is not None:
                        todo.append(default)
                self._index_scopes(node, scope)
                continue
            if isinstance(node, ast.Name):
                self.name_scope[id(node)] = scope
            pairs = []
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value if not isinstance(node, ast.AugAssign) else None
                pairs = [(t, value) for t in targets]
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                pairs = [(node.target, None)]  # an element of the iterable: unknown
            elif isinstance(node, ast.comprehension):
                pairs = [(node.target, None)]
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                pairs = [(node.optional_vars, None)]
            elif isinstance(node, ast.NamedExpr):
                pairs = [(node.target, node.value)]
            for target, value in pairs:
                plain = isinstance(target, ast.Name)
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        # tuple unpacking: the parts of a value are unknown, as is a loop element
                        anchor = node if hasattr(node, "end_lineno") else target
                        end = (anchor.end_lineno, anchor.end_col_offset)
                        scope["assign"].append((end, sub.id, value if plain else None))
            todo.extend(ast.iter_child_nodes(node))
        scope["assign"].sort(key=lambda item: item[0])

    def _last_value(self, name_node):
        """The value last assigned to the name before this use: (found, value-or-None)."""
        scope = self.name_scope.get(id(name_node))
        pos = (name_node.lineno, name_node.col_offset)
        while scope is not None:
            found = None
            for end, var, value in scope["assign"]:
                if var == name_node.id and end <= pos:
                    found = (True, value)
            if found is None and any(var == name_node.id for _, var, _ in scope["assign"]):
                found = (True, None)  # assigned later in this scope only (a loop): unknown
            if found is not None:
                return found
            scope = scope["parent"]
        return False, None

    def is_foreign(self, node, depth=0):
        """True when the expression's value is certainly not a torch object."""
        while depth < 50:
            depth += 1
            if isinstance(node, (ast.Constant, ast.JoinedStr, ast.List, ast.Dict, ast.Set,
                                 ast.ListComp, ast.DictComp, ast.SetComp, ast.Tuple, ast.Compare,
                                 ast.BoolOp)):
                return True
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Attribute) and node.func.attr in FOREIGN_PRODUCING_METHODS:
                    return True
                if isinstance(node.func, ast.Name) and node.func.id in NON_TORCH_BUILTINS:
                    return True
                node = node.func
            elif isinstance(node, (ast.Attribute, ast.Subscript)):
                node = node.value
            elif isinstance(node, ast.BinOp):
                operands = [o for o in (node.left, node.right) if not isinstance(o, ast.Constant)]
                return bool(operands) and all(self.is_foreign(o, depth) for o in operands)
            elif isinstance(node, ast.UnaryOp):
                node = node.operand
            elif isinstance(node, ast.IfExp):
                return self.is_foreign(node.body, depth) and self.is_foreign(node.orelse, depth)
            elif isinstance(node, ast.Name):
                found, value = self._last_value(node)
                if found:
                    return value is not None and self.is_foreign(value, depth)
                return self.aliases.get(node.id) is FOREIGN
            else:
                return False
        return False

    # ---- torch namespaces ----
    def module_visible(self, mod):
        return (mod in self.loaded or mod in self.explicit
                or any(e.startswith(mod + ".") for e in self.explicit))

    def check_path(self, node, parts):
        """Walk a dotted torch path name by name; report the first name 1.7.1 lacks."""
        current = parts[0]
        kind = "module"
        for part in parts[1:]:
            if part.startswith("__") and part.endswith("__"):
                return
            candidate = current + "." + part
            if kind == "module":
                if candidate in self.modules and self.module_visible(candidate):
                    current = candidate
                    continue
                names = self.namespaces.get(current)
                if names is None:
                    return  # a module whose names are not recorded: nothing more to say
                if part in names:
                    if candidate in self.modules:
                        kind = "unloaded module"  # e.g. torch.fft: a function unless imported
                    else:
                        kind = "class" if candidate in self.classes else "object"
                    current = candidate
                    continue
                if candidate in self.modules:
                    self.report(node, "`%s` is a module that `import torch` does not load in torch "
                                "1.7.1; add `import %s`" % (candidate, candidate))
                else:
                    self.report(node, "`%s` does not exist in torch 1.7.1" % candidate)
                return
            if kind == "unloaded module":
                self.report(node, "`%s` needs `import %s` in torch 1.7.1 (without it `%s` is not "
                            "the module)" % (candidate, current, current))
                return
            if kind == "class":
                if part not in self.classes[current]:
                    self.report(node, "`%s` does not exist in torch 1.7.1" % candidate)
                return
            return  # attribute of a function or other object: not tracked

    # ---- visitors ----
    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] != "torch":
                continue
            if alias.name not in self.modules and alias.name != "torch":
                self.report(node, "module `%s` does not exist in torch 1.7.1" % alias.name)

    def visit_ImportFrom(self, node):
        mod = node.module or ""
        if node.level or mod.split(".")[0] != "torch":
            return
        if mod not in self.modules and mod != "torch":
            self.report(node, "module `%s` does not exist in torch 1.7.1" % mod)
            return
        names = self.namespaces.get(mod)
        for alias in node.names:
            if alias.name == "*" or names is None:
                continue
            full = mod + "." + alias.name
            if alias.name not in names and full not in self.modules:
                self.report(node, "`%s` does not exist in torch 1.7.1" % full)

    def visit_Attribute(self, node):
        if not isinstance(node.ctx, ast.Load):
            self.generic_visit(node)
            return
        chain = _flatten_chain(node)
        if chain is not None:
            root, attrs = chain
            target = self.aliases.get(root)
            if target is FOREIGN:
                return
            if target is not None:
                self.check_path(node, target.split(".") + attrs)
                return
        receiver = node.value
        if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
            pass
        elif self.is_foreign(receiver):
            pass
        elif node.attr.startswith("__") and node.attr.endswith("__"):
            pass
        elif id(node) in self.call_funcs:
            if node.attr not in self.allowed_methods and node.attr not in self.defined:
                if node.attr in self.tensor_newer:
                    why = "a Tensor method only in newer torch"
                else:
                    why = "neither a torch 1.7.1 Tensor/Module method nor a builtin method"
                self.report(node, "`.%s()` in `%s` is %s" % (node.attr, _text(self.src, node), why))
        elif node.attr in self.tensor_newer and node.attr not in self.defined:
            self.report(node, "`.%s` in `%s` is a Tensor attribute only in newer torch, not 1.7.1"
                        % (node.attr, _text(self.src, node)))
        self.generic_visit(node)


def check_torch_api(name, src, facts=None):
    """Every torch name and tensor method the file uses exists in torch 1.7.1."""
    facts = facts or load_facts()
    tree = ast.parse(src, filename=name)
    checker = _TorchApiChecker(name, src, facts)
    checker.prepare(tree)
    checker.visit(tree)
    return checker.problems


# --------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------

if __name__ == "__main__":  # python -m submission.api_check FILE...: torch 1.7.1 API check only
    status = 0
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as fh:
            found = check_python37(path, fh.read())
        with open(path, encoding="utf-8") as fh:
            found += check_torch_api(path, fh.read())
        for line in found:
            print(line)
        status = status or bool(found)
    sys.exit(status)
