"""The accuracy slot of each layer's section: the certifier's measurements, when they exist.

``make accuracy`` (the certifier) writes accuracy.json beside ACCURACY.md: an object with the
measurements under ``layers`` (keyed by layer name) and what they mean under ``about`` and
``sweep``. The page shows, per layer, every measurement the file holds, whatever its nesting:
each path of keys down to a record of numbers (dtype -> source -> {max, p99, mean, ...}) is a
row, each number a column; a text or a list of texts beside them (the form chosen, the targets
missed) is a note. A missing file leaves the slot saying how to fill it.
"""
import json
import numbers
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "accuracy.json"


class AccuracyDataError(ValueError):
    pass


def _is_record(node):
    return isinstance(node, dict) and node and all(
        isinstance(v, numbers.Number) or v is None for v in node.values())


def _walk(node, path, rows, notes):
    """Collect (path, record) rows and (path, text) notes under node."""
    if _is_record(node):
        rows.append((path, node))
    elif isinstance(node, dict):
        for key, value in node.items():
            _walk(value, path + (str(key),), rows, notes)
    elif isinstance(node, str):
        notes.append((path, node))
    elif isinstance(node, list) and all(isinstance(v, str) for v in node):
        notes.extend((path, v) for v in node)
    else:
        raise AccuracyDataError("expected nested objects ending in records of numbers or texts at {}, found {!r}"
                                .format("/".join(path), node))


def _drop_common(paths):
    """Drop the path positions every row shares (a wrapper key such as "dtypes")."""
    if len(paths) < 2:
        return [tuple(p[-2:]) for p in paths]
    keep = [i for i in range(min(map(len, paths))) if len({p[i] for p in paths}) > 1]
    return [tuple(p[i] for i in keep) + p[min(map(len, paths)):] for p in paths]


def load(path=DATA):
    """{"about": [texts], "layers": {name: {"columns", "rows": [(labels, values)], "notes"}}};
    None when there is no file."""
    path = pathlib.Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AccuracyDataError("{}: not JSON ({})".format(path, error)) from error
    if not isinstance(data, dict) or not isinstance(data.get("layers"), dict):
        raise AccuracyDataError("{}: expected an object with the measurements under \"layers\", keyed by "
                                "layer name".format(path))
    tables = {}
    for name, node in data["layers"].items():
        rows, notes = [], []
        _walk(node, (name,), rows, notes)
        columns = []
        for _, record in rows:
            columns += [c for c in record if c not in columns]
        labels = _drop_common([p for p, _ in rows])
        tables[name] = {
            "columns": columns,
            "rows": [(label, [_format(record.get(c)) for c in columns]) for label, (_, record) in zip(labels, rows)],
            "notes": [("/".join(p[1:]), text) for p, text in notes],
        }
    about = [data[k] for k in ("about", "sweep") if isinstance(data.get(k), str)]
    return {"about": about, "layers": tables}


def _format(value):
    if value is None:
        return ""
    if isinstance(value, numbers.Integral):
        return str(value)
    return "{:.4g}".format(value)
