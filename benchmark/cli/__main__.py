"""``python -m serbench.cli``."""

import sys

from . import main

sys.exit(main())
