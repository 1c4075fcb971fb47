"""Runs a script's checks: one line per check, a summary, non-zero exit if any failed."""

import sys
from typing import Callable, List


def run(checks: List[Callable[[], None]]) -> None:
    failed = 0
    for check in checks:
        try:
            check()
            print(f"ok   {check.__name__}")
        except Exception as e:  # report every check, then fail
            failed += 1
            print(f"FAIL {check.__name__}: {e!r}")
    print(f"{len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
