"""``k8s`` discovery: the Kubernetes Endpoints of a service (``ekka_cluster_k8s``).

``GET {apiserver}/api/v1/namespaces/{namespace}/endpoints/{service_name}`` with
``Authorization: Bearer {token}``, where the token is the service account's token
file with every newline removed (empty when unreadable). If the service account's
``ca.crt`` exists the server is verified with it, otherwise TLS verification is
off (as in ekka). Only ready addresses count (``subsets[].addresses[]``).

Node names, by ``address_type`` (``suffix`` empty / not empty):

==========  ======================  ==============================================
ip          ``App@10.0.0.5``        ``App@10.0.0.5`` (suffix ignored)
dns         ``App@10-0-0-5``        ``App@10-0-0-5.{namespace}.{suffix}``
hostname    ``App@{hostname}``      ``App@{hostname}.{service}.{namespace}.{suffix}``
==========  ======================  ==============================================

With ``use_endpoint_slices=True`` the newer EndpointSlice API is read instead
(``/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices`` with the label
``kubernetes.io/service-name={service_name}``): endpoints whose ``ready`` condition
is not false (the API says an unknown state means ready), first address each.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pyekka.discovery._http import HttpClient, HttpError, HttpStatusError, TlsOptions
from pyekka.discovery.strategy import Strategy, unique

__all__ = ["ADDRESS_TYPES", "SERVICE_ACCOUNT_DIR", "K8sOptions", "K8sStrategy", "node_name"]

log = logging.getLogger("pyekka.discovery.k8s")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where a pod finds its service-account token and CA (inside Kubernetes)."""
ADDRESS_TYPES = ("ip", "dns", "hostname")
SLICE_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class K8sOptions:
    """ekka's k8s options plus the paths of the service-account files.

    ``token_file``/``cacertfile`` default to ``token``/``ca.crt`` in
    ``service_account_dir``.
    """

    apiserver: str
    service_name: str
    namespace: str = "default"
    address_type: str = "ip"
    app_name: str = "ekka"
    suffix: str = ""
    use_endpoint_slices: bool = False
    service_account_dir: str = SERVICE_ACCOUNT_DIR
    token_file: str | None = None
    cacertfile: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.address_type not in ADDRESS_TYPES:
            raise ValueError(
                f"address_type must be one of {ADDRESS_TYPES}, not {self.address_type!r}"
            )
        if not self.apiserver or not self.service_name:
            raise ValueError("k8s discovery needs apiserver and service_name")
        object.__setattr__(self, "apiserver", self.apiserver.rstrip("/"))

    @property
    def token_path(self) -> Path:
        """The service-account token file."""
        return Path(self.token_file or os.path.join(self.service_account_dir, "token"))

    @property
    def ca_path(self) -> Path:
        """The CA certificate file (used when it exists)."""
        return Path(self.cacertfile or os.path.join(self.service_account_dir, "ca.crt"))


def node_name(options: K8sOptions, host: str) -> str:
    """The node name for an address's host part, by ekka's address-type rules."""
    o = options
    if o.suffix and o.address_type == "hostname":
        return f"{o.app_name}@{host}.{o.service_name}.{o.namespace}.{o.suffix}"
    if o.suffix and o.address_type == "dns":
        return f"{o.app_name}@{host}.{o.namespace}.{o.suffix}"
    return f"{o.app_name}@{host}"


class K8sStrategy(Strategy):
    """Discovery from a Kubernetes service's ready endpoints."""

    name = "k8s"
    log = log

    def __init__(self, options: K8sOptions) -> None:
        self.options = options
        self._http: HttpClient | None = None

    def _token(self) -> str:
        try:
            return self.options.token_path.read_text().replace("\n", "")
        except OSError as exc:
            self.log.error("k8s discovery: cannot read %s: %s", self.options.token_path, exc)
            return ""

    def _client(self) -> HttpClient:
        ca = self.options.ca_path
        tls: ssl.SSLContext | bool = False
        if ca.is_file():
            try:
                tls = TlsOptions(cacertfile=str(ca)).context()
            except OSError as exc:
                raise self.error("cannot use the CA file %s: %s", ca, exc) from None
        else:
            self.log.debug("k8s discovery: no %s, TLS verification disabled", ca)
        if self._http is None:
            self._http = HttpClient(timeout=self.options.timeout)
        self._http.tls = tls
        return self._http

    def _url(self) -> str:
        o = self.options
        ns, svc = quote(o.namespace, safe=""), quote(o.service_name, safe="")
        if o.use_endpoint_slices:
            selector = quote(f"{SLICE_LABEL}={o.service_name}", safe="")
            return (
                f"{o.apiserver}/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
                f"?labelSelector={selector}"
            )
        return f"{o.apiserver}/api/v1/namespaces/{ns}/endpoints/{svc}?"

    async def _get(self) -> Any:
        url = self._url()
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        try:
            return await self._client().request("GET", url, headers=headers)
        except HttpStatusError as exc:
            message = exc.json_field("message") or exc
            raise self.error("GET %s: HTTP %d: %s", url, exc.status, message) from None
        except HttpError as exc:
            raise self.error("%s", exc) from None
        except ValueError as exc:
            raise self.error("malformed answer: %s", exc) from None

    def _hosts_from_endpoints(self, answer: dict) -> Iterator[str | None]:
        for subset in answer.get("subsets") or []:
            for address in subset.get("addresses") or []:
                yield self._host(address.get("ip"), address.get("hostname"))

    def _hosts_from_slices(self, answer: dict) -> Iterator[str | None]:
        for item in answer.get("items") or []:
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                addresses = endpoint.get("addresses") or [None]
                yield self._host(addresses[0], endpoint.get("hostname"))

    def _host(self, ip: Any, hostname: Any) -> str | None:
        kind = self.options.address_type
        value = hostname if kind == "hostname" else ip
        if not isinstance(value, str) or not value:
            field = "hostname" if kind == "hostname" else "ip"
            self.log.warning("k8s discovery: skipping an endpoint without %s", field)
            return None
        return value.replace(".", "-") if kind == "dns" else value

    async def discover(self) -> list[str]:
        """Node names of the service's ready endpoints."""
        answer = await self._get()
        slices = self.options.use_endpoint_slices
        extract = self._hosts_from_slices if slices else self._hosts_from_endpoints
        try:
            if not isinstance(answer, dict):
                raise ValueError("not a JSON object")
            hosts = list(extract(answer))
        except (ValueError, AttributeError, TypeError) as exc:
            raise self.error("malformed answer (%s): %.300r", exc, answer) from None
        return unique(node_name(self.options, host) for host in hosts if host is not None)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def __repr__(self) -> str:
        o = self.options
        return f"<K8sStrategy {o.namespace}/{o.service_name} {o.address_type}>"
