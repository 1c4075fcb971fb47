"""Runs a list of client checks: one line per check, then a summary the Rust side
reads (tests/src/openai.rs); exits non-zero if any failed."""

import sys


def run(checks) -> None:
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
