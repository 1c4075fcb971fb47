"""The official `openai` package against a Tollgate edge whose org caches answers.

Driven by tests/tests/cache.rs, which starts the admin service, the edge and a mock
provider and passes TOLLGATE_BASE_URL and TOLLGATE_KEY (may call gpt-4o and
text-embedding-3-small). Each check talks about the `x-tollgate-cache` header; the
Rust side counts what reached the provider and what usage recorded.
"""

import os

from openai import OpenAI

import checks

BASE_URL = os.environ["TOLLGATE_BASE_URL"]
KEY = os.environ["TOLLGATE_KEY"]
CACHE = "x-tollgate-cache"
MESSAGES = [{"role": "user", "content": "cache me"}]


def client() -> OpenAI:
    return OpenAI(base_url=BASE_URL, api_key=KEY, max_retries=0, timeout=20)


def chat(**extra):
    return client().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES, temperature=0, **extra
    )


def second_chat_is_a_hit() -> None:
    first = chat()
    assert first.headers.get(CACHE) == "miss", dict(first.headers)
    second = chat()
    assert second.headers.get(CACHE) == "hit", dict(second.headers)
    a, b = first.parse(), second.parse()
    assert b.choices[0].message.content == "Hello from the mock upstream.", b
    assert a.model_dump() == b.model_dump(), (a, b)


def embeddings_are_cached() -> None:
    def embed():
        return client().embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="cache me"
        )

    first, second = embed(), embed()
    assert (first.headers.get(CACHE), second.headers.get(CACHE)) == ("miss", "hit")
    assert second.parse().data[0].embedding == [0.1, 0.2, 0.3]


def completions_are_cached() -> None:
    def complete():
        return client().completions.with_raw_response.create(
            model="gpt-4o", prompt="cache me", max_tokens=5
        )

    first, second = complete(), complete()
    assert (first.headers.get(CACHE), second.headers.get(CACHE)) == ("miss", "hit")
    assert second.parse().choices[0].text == "mock text"


def no_store_bypasses_the_cache() -> None:
    r = chat(extra_headers={"cache-control": "no-store"})
    assert r.headers.get(CACHE) is None, dict(r.headers)
    assert r.parse().choices[0].message.content == "Hello from the mock upstream."


def streams_are_never_cached() -> None:
    for _ in range(2):
        r = client().chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, temperature=0, stream=True
        )
        assert r.headers.get(CACHE) is None, dict(r.headers)
        text = "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)
        assert text == "part0 part1 part2 ", repr(text)


CHECKS = [
    second_chat_is_a_hit,
    embeddings_are_cached,
    completions_are_cached,
    no_store_bypasses_the_cache,
    streams_are_never_cached,
]

if __name__ == "__main__":
    checks.run(CHECKS)
