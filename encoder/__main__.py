"""``python -m encoder``: see :mod:`encoder.cli`."""

import sys

from .cli import main

sys.exit(main())
