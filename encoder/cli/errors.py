"""The one error type of the command line.

A command raises :class:`CLIError` for a bad flag value or a file it cannot use;
:func:`encoder.cli.main` prints it as one line, ``error: ...``, and exits with status 2
(never a traceback).
"""

from __future__ import annotations


class CLIError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""
