"""The net id that names the zip: checked first, with the standard library only.

    python3 -m submission.netid NETID

exits 0 for a valid net id and 2 with a sentence saying what a net id looks like otherwise.
`make` runs it before anything else (before the virtual environment even exists), so
`make NETID=AB1234` is refused within a second.
"""
import re
import sys

# NYU net ids: the holder's initials (2 or 3 lowercase letters) followed by digits.
NETID_RE = re.compile(r"[a-z]{2,3}[0-9]{1,6}")
NETID_HELP = ("an NYU net id is 2 or 3 lowercase letters (your initials) followed by digits, "
              "e.g. ab1234 or abc123")


class BadNetid(ValueError):
    pass


def validate_netid(netid):
    """Returns the net id, or raises BadNetid saying what a net id looks like."""
    if netid is None or netid == "":
        raise BadNetid("no net id given: pass --netid (with make: make submission NETID=ab1234); "
                       + NETID_HELP)
    if NETID_RE.fullmatch(netid):
        return netid
    hint = ""
    stripped = netid.strip()
    if stripped.lower().endswith(".zip"):
        hint = " (give the net id without .zip: the file is named <net id>.zip)"
    elif stripped != netid:
        hint = " (it has leading or trailing spaces)"
    elif NETID_RE.fullmatch(netid.lower()):
        hint = " (use lowercase: %s)" % netid.lower()
    elif "@" in netid:
        hint = " (give the net id, not the e-mail address)"
    raise BadNetid("%r is not a net id%s; %s" % (netid, hint, NETID_HELP))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        validate_netid(argv[0] if argv else None)
    except BadNetid as error:
        print("make: refused NETID: %s" % error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
