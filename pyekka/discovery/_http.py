"""The small HTTP client the etcd and k8s strategies share (aiohttp underneath).

It mirrors what ekka's ``ekka_httpc`` puts on the wire: form bodies encoded as
OTP's ``uri_string:compose_query/1`` encodes them, JSON answers for 200 and 201,
nothing for 204, and every other status an error carrying the status and body.
"""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

__all__ = ["HttpClient", "HttpError", "HttpStatusError", "TlsOptions", "form_urlencode"]

_FORM_SAFE = frozenset(b"*-._0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def form_urlencode(pairs: Iterable[tuple[str, str | int | bool]]) -> str:
    """``k=v&...`` with the HTML form byte serializer (OTP's ``compose_query``).

    Letters, digits and ``*-._`` stay, a space becomes ``+``, every other UTF-8
    byte ``%XX``: ``value=emqx%40127.0.0.1``. Booleans are ``true``/``false``.
    """

    def enc(value: str | int | bool) -> str:
        if isinstance(value, bool):
            value = "true" if value else "false"
        out = []
        for b in str(value).encode("utf-8"):
            if b in _FORM_SAFE:
                out.append(chr(b))
            elif b == 0x20:
                out.append("+")
            else:
                out.append(f"%{b:02X}")
        return "".join(out)

    return "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)


@dataclass(frozen=True)
class TlsOptions:
    """Client TLS options (ekka's ``ssl_options``): CA file, client cert and key files.

    ``verify=False`` disables certificate and host-name checks.
    """

    cacertfile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    verify: bool = True

    def context(self) -> ssl.SSLContext:
        """An :class:`ssl.SSLContext` with these options (OSError/SSLError if unusable)."""
        ctx = ssl.create_default_context(cafile=self.cacertfile)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx


class HttpError(Exception):
    """The request did not get an answer (connection refused, TLS failure, timeout)."""


class HttpStatusError(HttpError):
    """An answer whose status is not 200, 201 or 204."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300].decode('utf-8', 'replace').strip()}")
        self.status = status
        self.body = body

    def json_field(self, key: str) -> Any:
        """A field of the JSON error body, or ``None``."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data.get(key) if isinstance(data, dict) else None


class HttpClient:
    """One aiohttp session (created on first use), with a timeout and optional TLS."""

    def __init__(self, *, timeout: float = 10.0, tls: ssl.SSLContext | bool | None = None):
        self.timeout = timeout
        self.tls = tls
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "pyekka"},
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        form: Iterable[tuple[str, str | int | bool]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; the decoded JSON of a 200/201 answer, ``None`` for 204.

        Raises :class:`HttpStatusError` for other statuses, :class:`HttpError` when
        there is no answer, ``ValueError`` when a 200/201 body is not JSON.
        """
        hdrs = dict(headers or {})
        data: str | bytes | None = None
        if form is not None:
            data = form_urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            data = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        kwargs: dict[str, Any] = {}
        if timeout is not None:  # math.inf: wait as long as it takes
            total = None if math.isinf(timeout) else timeout
            kwargs["timeout"] = aiohttp.ClientTimeout(total=total)
        if self.tls is not None:
            kwargs["ssl"] = self.tls
        try:
            async with self._get_session().request(
                method, URL(url, encoded=True), data=data, headers=hdrs, **kwargs
            ) as resp:
                status, body = resp.status, await resp.read()
        except TimeoutError:
            raise HttpError(f"{method} {url}: no answer in time") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise HttpError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
        if status in (200, 201):
            try:
                return json.loads(body)
            except ValueError:
                raise ValueError(
                    f"{method} {url}: the answer is not JSON: {body[:200]!r}"
                ) from None
        if status == 204:
            return None
        raise HttpStatusError(status, body)

    async def close(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
