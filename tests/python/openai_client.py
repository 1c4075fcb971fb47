"""The official `openai` package against a running Tollgate edge.

Driven by tests/tests/openai_client.rs, which starts the edge and a mock provider and
passes TOLLGATE_BASE_URL, TOLLGATE_KEY (may call gpt-4o, gpt-4o-mini and
text-embedding-3-small) and TOLLGATE_NARROW_KEY (may call gpt-4o-mini only). Prints one line per check and
exits non-zero on the first failure.
"""

import os

import openai
from openai import OpenAI

from checks import run

BASE_URL = os.environ["TOLLGATE_BASE_URL"]
KEY = os.environ["TOLLGATE_KEY"]
NARROW_KEY = os.environ["TOLLGATE_NARROW_KEY"]


def client(key: str) -> OpenAI:
    return OpenAI(base_url=BASE_URL, api_key=key, max_retries=0, timeout=20)


def chat_completion() -> None:
    r = client(KEY).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.choices[0].message.content == "Hello from the mock upstream.", r
    assert r.usage is not None and r.usage.total_tokens == 15, r.usage


def streaming_completion() -> None:
    stream = client(KEY).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )
    text = "".join(
        c.choices[0].delta.content or "" for c in stream if c.choices
    )
    assert text == "part0 part1 part2 ", repr(text)


def embeddings() -> None:
    r = client(KEY).embeddings.create(model="text-embedding-3-small", input="hi")
    assert r.data[0].embedding == [0.1, 0.2, 0.3], r
    assert r.usage.prompt_tokens == 10, r.usage


def models_listed_for_the_key() -> None:
    ids = sorted(m.id for m in client(NARROW_KEY).models.list())
    assert ids == ["gpt-4o-mini"], ids


def bad_key_is_authentication_error() -> None:
    try:
        client("sk-tg-not-a-real-key").chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.AuthenticationError as e:
        assert e.status_code == 401
        assert e.code == "invalid_api_key", e.body
        return
    raise AssertionError("expected AuthenticationError")


def model_outside_key_is_permission_denied() -> None:
    try:
        client(NARROW_KEY).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.PermissionDeniedError as e:
        assert e.status_code == 403
        assert e.code == "model_not_allowed", e.body
        return
    raise AssertionError("expected PermissionDeniedError")


CHECKS = [
    chat_completion,
    streaming_completion,
    embeddings,
    models_listed_for_the_key,
    bad_key_is_authentication_error,
    model_outside_key_is_permission_denied,
]

if __name__ == "__main__":
    run(CHECKS)
