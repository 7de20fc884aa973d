"""Which line of which source file a line of a rendered file came from.

The submission's mlp.py (generated/mlp_standalone.py) is mlp.py with generated/layers.py
inlined, so a problem found at its line 316 may be line 116 of the mlp.py the user edits.
Lines are matched as sequences (difflib), so a line that occurs twice (``import torch``)
is still placed by its neighbours; a line found in no source (a header, or a line changed
after rendering) maps to nothing.
"""
import difflib
import re


def _lines(text):
    return [line.rstrip() for line in text.splitlines()]


def line_origins(rendered, sources):
    """{rendered line number: (source name, line number)}, 1-based, for every line that
    comes unchanged from one of ``sources`` ({name: text}, tried in order)."""
    rendered_lines = _lines(rendered)
    origins = {}
    for name, text in sources.items():
        matcher = difflib.SequenceMatcher(None, rendered_lines, _lines(text), autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                line = block.a + k + 1
                if line not in origins and rendered_lines[block.a + k].strip():
                    origins[line] = (name, block.b + k + 1)
    return origins


def relocate(messages, file_name, rendered, sources):
    """Messages starting ``<file_name>:<line>`` restated at the line of the source file it came
    from, the rendered line kept in brackets; other messages unchanged."""
    origins = line_origins(rendered, sources)
    pattern = re.compile(r"^{}:(\d+)(:\d+)?".format(re.escape(file_name)))

    def restate(match):
        origin = origins.get(int(match.group(1)))
        if origin is None:
            return match.group(0)
        return "{}:{}{} (line {} of the {} built from it)".format(
            origin[0], origin[1], match.group(2) or "", match.group(1), file_name)

    return [pattern.sub(restate, message, count=1) for message in messages]
