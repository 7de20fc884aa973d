import sys

from derive.web.build import main

sys.exit(main())
