import sys

from derive.render import main

sys.exit(main())
