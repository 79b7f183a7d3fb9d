"""Outbound-URL policy: every server-side request to an address a user typed goes through here
(outgoing webhooks, an organization's AI base URL, future providers' server URLs).

- Only ``http`` and ``https``.
- The host is resolved once, every address it resolves to must be public (``is_global``, not
  multicast; IPv6 only in global unicast or NAT64, never Teredo, IPv4-compatible or -translated,
  and forms that embed an IPv4 address — mapped, NAT64, 6to4 — judged by that address too),
  and the connection goes to the address that was checked:
  no second lookup, so a DNS answer that changes between check and request (rebinding) cannot
  slip a private address in. TLS still verifies the certificate against the hostname (SNI).
- Each new connection is checked, so a redirect to a refused address is refused too.

Exceptions, both explicit: ``EGRESS_ALLOW_PRIVATE`` (development, tests and the embedded
sandbox, never production) turns the address check off; a caller may pass ``allow``, URLs of
servers the operator named (e.g. ``AI_PRIVATE_BASE_URLS`` for a self-hosted model server on a
private network), whose host and port may resolve to private addresses.

``url_check`` answers early with a clear message (forms, API); ``session()`` (requests) and
``httpx_client()`` (the ``openai`` client) enforce the same policy when connecting.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

import httpcore2
import httpx2
import requests
from django.conf import settings
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

SCHEMES = ("http", "https")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Where a public IPv6 address can be: global unicast, or NAT64's well-known prefix (an IPv6-only
# network reaching a public IPv4 address). Everything else (site-local, IPv4-translated, SRv6,
# the new documentation prefix...) is refused even where ``ipaddress`` calls it global.
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REFUSED_V6 = [
    ipaddress.ip_network("64:ff9b:1::/48"),  # RFC 8215: local-use NAT64
    ipaddress.ip_network("2001::/32"),  # Teredo: an IPv4 address behind a relay
    ipaddress.ip_network("3fff::/20"),  # RFC 9637: documentation
]


class UnsafeURL(ValueError):
    """The URL may not be requested: wrong scheme, unresolvable host, or an address that is
    not public. The message says which, for a form error or a delivery's log."""


def allow_private() -> bool:
    return bool(getattr(settings, "EGRESS_ALLOW_PRIVATE", False))


def is_public(address: Address) -> bool:
    """Whether a customer-supplied URL may reach ``address``. An IPv6 address that carries an
    IPv4 one (IPv4-mapped, NAT64, 6to4) is judged by that address too: ``ipaddress`` calls
    ``64:ff9b::7f00:1`` or ``2002:7f00:1::`` global, yet a gateway would take them to loopback."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    if address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    if not (address in _GLOBAL_UNICAST or address in _NAT64):
        return False
    if any(address in network for network in _REFUSED_V6):
        return False
    if address in _NAT64:
        return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        return is_public(address.sixtofour)
    return True


def _endpoint(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)


def _allowed_endpoints(allow: Iterable[str]) -> frozenset[tuple[str, int]]:
    return frozenset(e for e in map(_endpoint, allow) if e is not None)


def resolve(host: str, port: int, *, allow: Collection[str] = ()) -> list[str]:
    """The addresses to connect to for ``host:port``, all checked; raises ``UnsafeURL``.

    Every address the name resolves to must pass, so a name that answers with one public
    and one private address is refused rather than tried."""
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeURL(_("The host %(host)s does not resolve.") % {"host": host}) from error
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if allow_private() or (host.lower().rstrip("."), port) in _allowed_endpoints(allow):
        return addresses
    for text in addresses:
        if not is_public(ipaddress.ip_address(text.split("%")[0])):
            raise UnsafeURL(
                _(
                    "%(host)s resolves to a private or reserved address (%(address)s); "
                    "only public hosts can be reached."
                )
                % {"host": host, "address": text}
            )
    return addresses


def url_check(url: str, *, allow: Collection[str] = (), resolve_host: bool = True) -> None:
    """Refuse ``url`` unless it is http(s) and (with ``resolve_host``) its host resolves only
    to addresses this policy accepts. The request itself checks again when it connects."""
    parts = urlsplit(url)
    endpoint = _endpoint(url)
    if parts.scheme not in SCHEMES or endpoint is None:
        raise UnsafeURL(_("Only http and https URLs with a host name can be used."))
    if resolve_host and not allow_private():
        resolve(*endpoint, allow=allow)


# --- requests (webhooks) ----------------------------------------------------------------------


class _PinnedConnectionMixin:
    """Connects to an address ``resolve`` checked; ``host`` stays the name, so the Host header,
    SNI and certificate check use it."""

    egress_allow: Collection[str] = ()

    def _new_conn(self):
        name, error = self._dns_host, None
        try:
            for address in resolve(name, self.port, allow=self.egress_allow):
                self._dns_host = address
                try:
                    return super()._new_conn()
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    error = exc
        finally:
            self._dns_host = name
        raise error or UnsafeURL(_("The host %(host)s does not resolve.") % {"host": name})


def _pinned_pools(allow: Collection[str]) -> dict[str, type]:
    attrs = {"egress_allow": tuple(allow)}
    http_conn = type("PinnedHTTPConnection", (_PinnedConnectionMixin, HTTPConnection), attrs)
    https_conn = type("PinnedHTTPSConnection", (_PinnedConnectionMixin, HTTPSConnection), attrs)
    return {
        "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


class PinnedAdapter(HTTPAdapter):
    def __init__(self, *, allow: Collection[str] = (), **kwargs):
        self.egress_allow = tuple(allow)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pinned_pools(self.egress_allow)


def session(*, allow: Collection[str] = ()) -> requests.Session:
    """A ``requests`` session that connects only where this policy allows. Environment proxies
    are ignored (a proxy would connect for us, unchecked); pass ``allow_redirects=False`` or let
    each hop be checked when it connects."""
    result = requests.Session()
    result.trust_env = False
    adapter = PinnedAdapter(allow=allow)
    result.mount("http://", adapter)
    result.mount("https://", adapter)
    return result


# --- httpx (the openai client) ----------------------------------------------------------------


class _PinnedBackend(httpcore2.SyncBackend):
    def __init__(self, allow: Collection[str]):
        self.egress_allow = tuple(allow)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        error = None
        for address in resolve(host, port, allow=self.egress_allow):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                error = exc
        raise error or UnsafeURL(_("The host %(host)s does not resolve.") % {"host": host})


def httpx_client(
    *, timeout: float, allow: Collection[str] = (), verify: ssl.SSLContext | bool = True
) -> httpx2.Client:
    """An ``httpx2`` client (``openai``'s ``http_client=``) whose every new connection, redirects
    included, goes to an address this policy checked."""
    transport = httpx2.HTTPTransport(verify=verify)
    transport._pool._network_backend = _PinnedBackend(allow)  # httpx exposes no other hook
    return httpx2.Client(transport=transport, timeout=timeout, trust_env=False)
