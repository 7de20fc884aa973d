import sys

from derive.render import main

if sys.argv[1:2] == ["explain"]:
    if len(sys.argv) != 3:
        sys.exit("usage: python -m derive explain NAME")
    from derive.profiles import describe
    print(describe(sys.argv[2]))
    sys.exit(0)
sys.exit(main())
