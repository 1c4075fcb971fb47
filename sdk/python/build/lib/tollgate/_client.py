"""The clients: configuration, transport with retries, and auto-paging lists.

Resources describe each call once (a ``_Call``); the sync client runs it at once, the
async client returns an awaitable, so both clients share one set of resources.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Generic, Iterator, TypeVar

import httpx

from . import _resources
from ._errors import APIConnectionError, APITimeoutError, TollgateError, status_error

__all__ = ["Tollgate", "AsyncTollgate", "SyncPage", "AsyncPage", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "http://127.0.0.1:8081"
NEXT_CURSOR = "x-next-cursor"
_IDEMPOTENT = {"GET", "PUT", "DELETE", "HEAD", "OPTIONS"}

T = TypeVar("T")


@dataclass
class _Call:
    """One API call: what to send and how to read the answer."""

    method: str
    path: str
    model: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    page: bool = False
    raw_text: bool = False
    auth: bool = True


def _admin_root(control_plane_url: str | None, base_url: str | None) -> str:
    """The admin API root: control_plane_url, then TOLLGATE_CONTROL_PLANE_URL, then
    base_url, then TOLLGATE_BASE_URL, then the local default; with or without /api."""
    url = (
        control_plane_url
        or os.environ.get("TOLLGATE_CONTROL_PLANE_URL")
        or base_url
        or os.environ.get("TOLLGATE_BASE_URL")
        or DEFAULT_BASE_URL
    )
    url = url.rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    return url


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the ones left out; booleans as the API spells them."""
    out = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else v
    return out


class _Base:
    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        control_plane_url: str | None,
        timeout: float,
        max_retries: int,
    ) -> None:
        api_key = api_key or os.environ.get("TOLLGATE_API_KEY")
        if not api_key:
            raise TollgateError(
                "no API key: pass api_key= or set TOLLGATE_API_KEY "
                "(a platform-admin or user token of the admin API)"
            )
        self.api_key = api_key
        self.control_plane_url = _admin_root(control_plane_url, base_url)
        #: The inference gateway, when given (``base_url`` in the seeds' form).
        self.base_url = base_url or os.environ.get("TOLLGATE_BASE_URL")
        self.timeout = timeout
        self.max_retries = max_retries
        self.organizations = _resources.Organizations(self)
        self.org_configs = _resources.OrgConfigs(self)
        self.members = _resources.Members(self)
        self.invitations = _resources.Invitations(self)
        self.teams = _resources.Teams(self)
        self.keys = _resources.Keys(self)
        self.agents = _resources.Agents(self)
        self.billing = _resources.Billing(self)
        self.usage = _resources.Usage(self)
        self.logs = _resources.Logs(self)
        self.tokens = _resources.Tokens(self)
        self.users = _resources.Users(self)
        self.models = _resources.Models(self)
        self.fx_rates = _resources.FxRates(self)
        self.audit_log = _resources.AuditLog(self)
        self.explain = _resources.Explain(self)

    def _request_args(self, call: _Call, params: dict[str, Any]) -> dict[str, Any]:
        headers = {"accept": "application/json"}
        if call.auth:
            headers["authorization"] = f"Bearer {self.api_key}"
        args: dict[str, Any] = {
            "method": call.method,
            "url": self.control_plane_url + call.path,
            "params": _clean(params),
            "headers": headers,
        }
        if call.body is not None:
            args["json"] = call.body
        return args

    def _retry(self, call: _Call, attempt: int, response: httpx.Response | None) -> bool:
        if attempt >= self.max_retries or call.method not in _IDEMPOTENT:
            return False
        return response is None or response.status_code == 429 or response.status_code >= 500

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(0.5 * 2**attempt, 8.0) * (0.75 + random.random() / 2)

    @staticmethod
    def _parse(call: _Call, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise status_error(response)
        if call.raw_text:
            return response.text
        if response.status_code == 204 or not response.content:
            return None
        data = response.json()
        if call.model is None:
            return data
        if call.page:
            return [call.model.model_validate(item) for item in data]
        return call.model.model_validate(data)


class SyncPage(Generic[T]):
    """One page of a list; iterating it walks every page, fetching as it goes."""

    def __init__(self, client: Tollgate, call: _Call, items: list[T], next_cursor: str | None):
        self._client = client
        self._call = call
        #: The items of this page.
        self.data = items
        #: The cursor of the next page, ``None`` on the last.
        self.next_cursor = next_cursor

    def has_next_page(self) -> bool:
        return self.next_cursor is not None

    def get_next_page(self) -> SyncPage[T]:
        if self.next_cursor is None:
            raise TollgateError("this is the last page")
        params = {**self._call.params, "cursor": self.next_cursor}
        return self._client._fetch_page(self._call, params)

    def iter_pages(self) -> Iterator[SyncPage[T]]:
        page: SyncPage[T] = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = page.get_next_page()

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.data


class AsyncPage(Generic[T]):
    """One page of a list; ``async for`` walks every page, fetching as it goes."""

    def __init__(self, client: AsyncTollgate, call: _Call, items: list[T], next_cursor: str | None):
        self._client = client
        self._call = call
        self.data = items
        self.next_cursor = next_cursor

    def has_next_page(self) -> bool:
        return self.next_cursor is not None

    async def get_next_page(self) -> AsyncPage[T]:
        if self.next_cursor is None:
            raise TollgateError("this is the last page")
        params = {**self._call.params, "cursor": self.next_cursor}
        return await self._client._fetch_page(self._call, params)

    async def iter_pages(self) -> AsyncIterator[AsyncPage[T]]:
        page: AsyncPage[T] = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = await page.get_next_page()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item


class Tollgate(_Base):
    """Synchronous client of the Tollgate admin API."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        control_plane_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            control_plane_url=control_plane_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._http = http_client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Tollgate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: _Call, params: dict[str, Any]) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(**self._request_args(call, params))
            except httpx.TimeoutException as e:
                if self._retry(call, attempt, None):
                    time.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise APITimeoutError(f"request timed out: {e}") from e
            except httpx.TransportError as e:
                if self._retry(call, attempt, None):
                    time.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise APIConnectionError(f"connection error: {e}") from e
            if self._retry(call, attempt, response):
                time.sleep(self._backoff(attempt))
                attempt += 1
                continue
            return response

    def _fetch_page(self, call: _Call, params: dict[str, Any]) -> SyncPage[Any]:
        response = self._send(call, params)
        items = self._parse(call, response)
        return SyncPage(self, call, items, response.headers.get(NEXT_CURSOR))

    def _run(self, call: _Call) -> Any:
        if call.page:
            return self._fetch_page(call, call.params)
        return self._parse(call, self._send(call, call.params))


class AsyncTollgate(_Base):
    """Asynchronous client of the Tollgate admin API (same resources, awaitable)."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        control_plane_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            control_plane_url=control_plane_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncTollgate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(self, call: _Call, params: dict[str, Any]) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(**self._request_args(call, params))
            except httpx.TimeoutException as e:
                if self._retry(call, attempt, None):
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise APITimeoutError(f"request timed out: {e}") from e
            except httpx.TransportError as e:
                if self._retry(call, attempt, None):
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise APIConnectionError(f"connection error: {e}") from e
            if self._retry(call, attempt, response):
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            return response

    async def _fetch_page(self, call: _Call, params: dict[str, Any]) -> AsyncPage[Any]:
        response = await self._send(call, params)
        items = self._parse(call, response)
        return AsyncPage(self, call, items, response.headers.get(NEXT_CURSOR))

    async def _run(self, call: _Call) -> Any:
        if call.page:
            return await self._fetch_page(call, call.params)
        return self._parse(call, await self._send(call, call.params))
