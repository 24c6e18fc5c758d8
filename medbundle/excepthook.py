"""Print the root cause of an uncaught error last, where a user looks, after the full traceback.

MONAI's bundle runner wraps every failure in its own errors ("Failed to instantiate component ...",
"Failed to evaluate ConfigExpression ..."), so the message medbundle wrote for the user — which file,
which column, what to do — ends up dozens of lines above the end of the output. Importing
``medbundle`` (every bundle config does) installs a hook that keeps Python's traceback as it is and then
prints ``medbundle: error: <root cause>`` as the last line(s).
"""

from __future__ import annotations

import sys
from types import TracebackType

__all__ = ["install", "root_cause"]


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of the chain: follow ``__cause__``, then unsuppressed ``__context__``."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def _hook(previous, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    previous(exc_type, exc, tb)
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return
    cause = root_cause(exc)
    if cause is not exc:  # a lone exception already ends the traceback; printing it again would repeat it
        print(f"medbundle: error: {type(cause).__name__}: {cause}", file=sys.stderr)


def install() -> None:
    """Install the hook, unless another tool (IPython, a debugger) already replaced Python's default one."""
    if sys.excepthook is sys.__excepthook__:
        previous = sys.excepthook
        sys.excepthook = lambda exc_type, exc, tb: _hook(previous, exc_type, exc, tb)
