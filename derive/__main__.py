"""``python -m derive`` renders generated/ (derive.render); ``python -m derive explain ...``
shows how one activation becomes code (derive.explain)."""
import sys

if sys.argv[1:2] == ["explain"]:
    from derive.explain import main

    sys.exit(main(sys.argv[2:]))

from derive.render import main  # noqa: E402

sys.exit(main())
