"""One error path for the programs: an expected error (bad input, a refused option, a file that is not what it should
be) is a :class:`UsageError`, printed as one line that says what, which file or option, and the fix, with exit status
2; an unexpected error keeps its traceback; Ctrl-C ends with status 130 and one line."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UsageError(Exception):
    """An expected error: its message names the problem, the option or file, and the fix."""


def run_program(prog: str, main: Callable, argv=None, *,
                interrupted: str = "interrupted; no file was left half-written.") -> None:
    """Run ``main(argv)``; a :class:`UsageError` becomes ``prog: error: message`` on stderr and exit status 2. A
    program turns the library's errors about its input into :class:`UsageError` where it knows which option or file
    they concern; anything else propagates with its traceback."""
    try:
        main(argv)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # outputs are written whole at the end (or, in training, saved first): nothing is half
        print(f"{prog}: {interrupted}", file=sys.stderr)
        raise SystemExit(130) from None
