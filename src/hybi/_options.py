"""What the asyncio and sync APIs do alike with the options they share."""

from __future__ import annotations

from hybi.exceptions import InvalidHandshake
from hybi.sansio.http import Headers, HeadersLike, as_headers

__all__ = ["header_fields", "one_of_the_header_options", "tls_handshake_failed"]


def one_of_the_header_options(
    additional_headers: HeadersLike | None, extra_headers: HeadersLike | None
) -> HeadersLike | None:
    """`additional_headers`, or `extra_headers` (its older name, as in websockets); not both."""
    if additional_headers is not None and extra_headers is not None:
        raise TypeError("give additional_headers or extra_headers (the same option), not both")
    return additional_headers if additional_headers is not None else extra_headers


def header_fields(fields: HeadersLike | None, name: str, value: str | None) -> Headers:
    """`fields` as Headers, with `name: value` (User-Agent, Server) added unless `fields`
    has that name already or `value` is None."""
    headers = as_headers(fields)
    if value is not None and name not in headers:
        headers.add(name, value)
    return headers


def tls_handshake_failed(host: str, port: int, error: BaseException) -> InvalidHandshake:
    """A wss:// opening whose TLS handshake failed other than on the certificate (which
    raises `ssl.SSLCertVerificationError` as it is): most likely a plain ws:// server."""
    return InvalidHandshake(
        f"TLS handshake with {host}:{port} failed ({getattr(error, 'reason', None) or error!r}): "
        "is it a wss:// server? A plain ws:// server answers TLS with garbage"
    )
