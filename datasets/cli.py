"""The one error tail every maskfer CLI shares: bad input is one `error: ...` line on stderr and exit code 2."""
from __future__ import annotations

import sys
from typing import Callable


def exit_code(body: Callable[[], int | None], *errors: type[BaseException]) -> int:
    """Run a CLI's body and return its exit code (0 when it returns None). An exception of one of `errors`
    (bad input: its message names the file, line or option) is printed as `error: <message>` on stderr and
    gives 2; any other exception propagates (a bug, with its traceback)."""
    try:
        code = body()
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if code is None else int(code)
