"""The official `openai` package calling a route group through a failing provider.

Driven by tests/tests/routing.rs, which starts the edge in front of two mock
providers (the first answering 503) and passes TOLLGATE_BASE_URL and TOLLGATE_KEY (a
key that may call the route group `fast`). Prints one line per check and exits
non-zero if any fails.
"""

import os

from openai import OpenAI

from checks import run

BASE_URL = os.environ["TOLLGATE_BASE_URL"]
KEY = os.environ["TOLLGATE_KEY"]


def client() -> OpenAI:
    # No client retries: a 200 here is the gateway's failover, not the client's.
    return OpenAI(base_url=BASE_URL, api_key=KEY, max_retries=0, timeout=20)


def chat_with_a_route_group() -> None:
    r = client().chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.choices[0].message.content == "Hello from the mock upstream.", r
    # The provider answered for the member the gateway chose.
    assert r.model == "gpt-4o-mini", r.model


def stream_with_a_route_group() -> None:
    stream = client().chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "part0 part1 part2 ", repr(text)


def the_group_is_listed() -> None:
    ids = {m.id: m.owned_by for m in client().models.list()}
    assert ids.get("fast") == "route-group", ids


CHECKS = [chat_with_a_route_group, stream_with_a_route_group, the_group_is_listed]

if __name__ == "__main__":
    run(CHECKS)
