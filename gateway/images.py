"""Image input shared by every dialect: format sniffing, size checks, URL fetching.

Which field wins, which formats and sizes a vendor accepts, whether a data: URI
prefix is tolerated: those are each dialect's choices, passed in as arguments
or as its ImageLimits. Nothing here names a vendor.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from contextvars import ContextVar
from typing import Awaitable, Callable

import httpcore
import httpx

from core.errors import (
    FetchError,
    FetchForbiddenError,
    FetchTimeoutError,
    FetchTooLargeError,
    ImageTooLargeBytesError,
    UnsupportedFormatError,
)
from core.limits import ImageLimits
from engine import decode

# --- formats ----------------------------------------------------------------


# Format sniffing and header sizes are the decoder's knowledge: one place, engine.decode.
sniff_format = decode.sniff_format
image_dimensions = decode.header_size


def check_image(data: bytes, limits: ImageLimits) -> str | None:
    """Refuse bytes over the size limit or in a known format the vendor does not take.

    Returns the sniffed format; unknown bytes pass (the engine answers ImageDecodeError).
    """
    if len(data) > limits.max_image_bytes:
        raise ImageTooLargeBytesError(f"{len(data)} > {limits.max_image_bytes} bytes")
    fmt = sniff_format(data)
    if fmt is not None and fmt not in limits.formats:
        raise UnsupportedFormatError(fmt)
    return fmt


# --- URL fetching -----------------------------------------------------------

Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud instance metadata endpoints, refused even though the generic checks catch them too.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
MAX_REDIRECTS = 3


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, via the system resolver."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host: {exc}") from exc
    return [info[4][0] for info in infos]


def is_forbidden_address(address: str) -> bool:
    """True for anything but a public unicast address (private, loopback, link-local, ...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip in METADATA_ADDRESSES
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


async def _check_host(url: httpx.URL, resolver: Resolver) -> list[str]:
    """The addresses `url`'s host resolves to, all of them public; else FetchError."""
    host = url.raw_host.decode("ascii")  # the name as httpx would look it up (IDNA)
    if not host:
        raise FetchForbiddenError("no host")
    try:
        addresses = [str(ipaddress.ip_address(host))]  # a literal address is not resolved
    except ValueError:
        addresses = await resolver(host, url.port or (443 if url.scheme == "https" else 80))
    if not addresses:
        raise FetchError(f"{host} resolves to nothing")
    for address in addresses:
        if is_forbidden_address(address):
            raise FetchForbiddenError(f"{host} resolves to non-public address {address}")
    return addresses


# (host, its checked addresses) for the connection the current fetch may open. A context
# variable, because httpcore hands its network backend the host name alone.
_checked_addresses: ContextVar[tuple[str, list[str]] | None] = ContextVar("checked_addresses", default=None)


class _CheckedAddressBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses fetch_image checked, not to what a second lookup of the name
    answers (DNS rebinding). Host header, TLS SNI and certificate checks still use the name."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend):
        self._backend = backend

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        checked = _checked_addresses.get()
        if checked is None:  # private addresses allowed: nothing was checked
            return await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        name, addresses = checked
        if host != name:
            raise httpcore.ConnectError(f"{host} is not the checked host {name}")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{name}: no address")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("image URLs are fetched over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def fetch_transport() -> httpx.AsyncHTTPTransport:
    """The transport for fetch_image's client: connections go to the addresses it checked."""
    transport = httpx.AsyncHTTPTransport()
    pool = transport._pool  # httpx has no option for the network backend: set it on its httpcore pool
    pool._network_backend = _CheckedAddressBackend(pool._network_backend)
    return transport


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(f"bad url: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchForbiddenError(f"scheme {parsed.scheme!r} not allowed")
    return parsed


async def fetch_image(
    url: str,
    limits: ImageLimits,
    allow_private: bool,
    client: httpx.AsyncClient,
    *,
    resolver: Resolver | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> bytes:
    """Download an image under the vendor's limits.

    http/https only; each hop's host is resolved and refused when it is not a
    public address (unless `allow_private`), and the connection goes to the
    addresses checked when `client` is built on fetch_transport(); at most
    `max_redirects` redirects, each checked again; each hop's connect, reads and
    the whole download within limits.fetch_timeout_s; reading stops past
    limits.max_image_bytes. Raises FetchError subclasses.
    """
    resolver = resolver or system_resolver
    try:
        async with asyncio.timeout(limits.fetch_timeout_s):
            return await _fetch(url, limits, allow_private, client, resolver, max_redirects)
    except TimeoutError as exc:
        raise FetchTimeoutError(f"no image within {limits.fetch_timeout_s} s") from exc
    except httpx.TimeoutException as exc:
        raise FetchTimeoutError(f"{type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}") from exc


async def _fetch(
    url: str,
    limits: ImageLimits,
    allow_private: bool,
    client: httpx.AsyncClient,
    resolver: Resolver,
    max_redirects: int,
) -> bytes:
    current = _parse_url(url)
    # The dialect's timeout for connecting and for every read, not the client's (httpx's default: 5 s).
    timeout = httpx.Timeout(limits.fetch_timeout_s)
    for _hop in range(max_redirects + 1):
        checked = None if allow_private else (current.raw_host.decode("ascii"), await _check_host(current, resolver))
        request = client.build_request("GET", current, timeout=timeout)
        token = _checked_addresses.set(checked)
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
        finally:
            _checked_addresses.reset(token)
        try:
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {response.status_code} without Location")
                try:
                    current = _parse_url(str(current.join(location)))
                except httpx.InvalidURL as exc:
                    raise FetchError(f"bad redirect: {exc}") from exc
                continue
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_image_bytes:
                raise FetchTooLargeError(f"content-length {declared} > {limits.max_image_bytes}")
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > limits.max_image_bytes:
                    raise FetchTooLargeError(f"more than {limits.max_image_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            await response.aclose()
    raise FetchError(f"more than {max_redirects} redirects")
