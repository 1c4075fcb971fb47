"""The official `openai` package makes chat completions with given keys and checks
each outcome: 200, or the status of the error the client raises.

Driven by tests/tests/key_lifecycle.rs: TOLLGATE_BASE_URL is the edge's /v1 URL and
TOLLGATE_CALLS a JSON list of {"key", "model", "expect"} (expect: 200, 401, 403, 429).
Prints one line per call and exits non-zero if any outcome differs.
"""

import json
import os
import sys

import openai
from openai import OpenAI

BASE_URL = os.environ["TOLLGATE_BASE_URL"]
CALLS = json.loads(os.environ["TOLLGATE_CALLS"])


def outcome(key: str, model: str) -> tuple[int, str]:
    client = OpenAI(base_url=BASE_URL, api_key=key, max_retries=0, timeout=20)
    try:
        r = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    except openai.APIStatusError as e:
        return e.status_code, str(e.code or "")
    assert r.choices[0].message.content, r
    return 200, ""


def main() -> int:
    failed = 0
    for i, call in enumerate(CALLS):
        status, code = outcome(call["key"], call["model"])
        ok = status == call["expect"]
        failed += not ok
        print(
            f"{'ok' if ok else 'FAIL'} call {i} {call['model']}: "
            f"{status} {code} (expected {call['expect']})"
        )
    print(f"{len(CALLS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
