"""`python -m accuracy choose` measures the accurate profile's candidates and records the
winners (derive/accurate_forms.json); `python -m accuracy report` certifies the generated code
and writes ACCURACY.md and accuracy.json, exiting 1 when a target is missed. `make accuracy`
runs choose, derive, report."""
import sys

from accuracy import choose, report

COMMANDS = {"choose": choose.main, "report": report.main}

if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
    sys.exit("usage: python -m accuracy {choose|report}")
sys.exit(COMMANDS[sys.argv[1]]())
