"""The accuracy slot of each layer's section: the certifier's measurements, when they exist.

``make accuracy`` (the certifier) writes a machine-readable file beside ACCURACY.md; the page
shows, per layer, every measurement the file holds for it, whatever the file's nesting: each
path of keys down to a record of numbers (for example dtype -> source -> {max, p99, mean}) is a
row, each number a column. A missing file leaves the slot saying how to fill it.
"""
import json
import numbers
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "accuracy.json"


class AccuracyDataError(ValueError):
    pass


def _rows(node, path=()):
    """[(path of keys, {column: number})] for every record of numbers under node."""
    if isinstance(node, dict) and node and all(isinstance(v, (numbers.Number, str)) or v is None
                                               for v in node.values()):
        return [(path, node)]
    if isinstance(node, dict):
        return [row for key, value in node.items() for row in _rows(value, path + (str(key),))]
    raise AccuracyDataError("expected nested objects ending in records of numbers at {}, found {!r}"
                            .format("/".join(path) or "the top", type(node).__name__))


def load(path=DATA):
    """{layer name: {"columns": [...], "rows": [(labels, [values])]}}; {} when there is no file."""
    path = pathlib.Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AccuracyDataError("{}: not JSON ({})".format(path, error)) from error
    layers = data.get("layers", data) if isinstance(data, dict) else None
    if not isinstance(layers, dict):
        raise AccuracyDataError("{}: expected an object keyed by layer name".format(path))
    tables = {}
    for name, node in layers.items():
        rows = [(labels[1:], record) for labels, record in _rows(node, (name,))]
        columns = []
        for _, record in rows:
            columns += [c for c in record if c not in columns]
        tables[name] = {"columns": columns,
                        "rows": [(labels, [_format(record.get(c)) for c in columns]) for labels, record in rows]}
    return tables


def _format(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return "" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return str(value)
    return "{:.3g}".format(value) if abs(value) >= 1e4 or (value and abs(value) < 1e-2) else "{:.2f}".format(value)
