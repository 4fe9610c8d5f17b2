"""``python -m encoder``: see :mod:`encoder.cli`."""

import sys

try:
    from .cli import main
except ImportError as exc:  # a Python without the project's dependencies (not the project's .venv)
    sys.exit(
        f"error: {exc.name} is not installed for {sys.executable}: run the project's Python, "
        ".venv/bin/python -m encoder ... (`make demo` creates .venv), or pip install -e . here"
    )

sys.exit(main())
