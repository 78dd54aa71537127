"""``python -m demo``: see demo/__init__.py."""

import sys

from demo import main

sys.exit(main())
