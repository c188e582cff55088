"""The one exception the embedded stack raises."""

from __future__ import annotations


class StackError(RuntimeError):
    """A component of the embedded stack could not be prepared, started, reached or stopped.

    The message says which component, what failed and, where there is one, the tail of the
    log that explains it, so that `fedstream stack up` can print it as is.
    """
