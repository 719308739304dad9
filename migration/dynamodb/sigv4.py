"""SigV4 signing of the fast path's requests: DynamoDB JSON POSTs to one endpoint.

The fast path (`client.WireSender`) sends every request of the backfill and reconcile
to the same URL with the same four headers; only the operation, the body and the time
change. So the canonical request is mostly constant text, and the signing key (four
HMACs over the secret, the date, the region and the service) changes once a day:
both are kept, and a request costs one SHA-256 of its body, one of the canonical
request and one HMAC. The result is byte for byte what botocore's `SigV4Auth` gives
for the same request (tests/unit/dynamodb/test_sigv4.py checks it).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote, urlsplit

CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "DynamoDB_20120810."


def endpoint_host(url: str) -> str:
    """The Host header of `url` as SigV4 signs it: lower case, without user info, and
    without the port when it is the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _canonical_path(url: str) -> str:
    path = urlsplit(url).path or "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalized = "/" + "/".join(segments) + ("/" if path.endswith("/") and segments else "")
    return quote(normalized, safe="/~")


class SigV4Signer:
    """Signs DynamoDB requests to `url` in `region` (see the module docstring).

    `headers(operation, body, credentials)` gives every header the request needs
    (Content-Type, X-Amz-Target, X-Amz-Date, X-Amz-Security-Token when the
    credentials have a token, Authorization), Host excepted: the HTTP client sends
    that one, with the same value (`self.host`)."""

    def __init__(self, url: str, region: str, service: str = "dynamodb"):
        self.host = endpoint_host(url)
        self.path = _canonical_path(url)
        self.region = region
        self.service = service
        self._key: tuple[str, str, bytes] | None = None  # (secret, date, signing key)
        self._clock: tuple[int, str] = (-1, "")

    def signing_key(self, secret: str, date: str) -> bytes:
        """The day's signing key: HMAC-SHA256 chained over date, region, service."""
        cached = self._key
        if cached is not None and cached[0] == secret and cached[1] == date:
            return cached[2]
        key = ("AWS4" + secret).encode("utf-8")
        for part in (date, self.region, self.service, "aws4_request"):
            key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
        self._key = (secret, date, key)
        return key

    def _now(self) -> str:
        second = int(time.time())
        clock = self._clock
        if clock[0] != second:
            clock = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
            self._clock = clock
        return clock[1]

    def headers(self, operation: str, body: bytes, credentials: Any,
                amz_date: str | None = None) -> dict[str, str]:
        """The signed headers of one request; `credentials` has access_key, secret_key
        and token (botocore's frozen credentials); `amz_date` (YYYYMMDDTHHMMSSZ) is now
        unless given."""
        stamp = amz_date or self._now()
        date = stamp[:8]
        target = TARGET_PREFIX + operation
        token = credentials.token
        if token:
            token = " ".join(token.split())
            canonical_headers = (f"content-type:{CONTENT_TYPE}\nhost:{self.host}\n"
                                 f"x-amz-date:{stamp}\nx-amz-security-token:{token}\n"
                                 f"x-amz-target:{target}\n")
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        else:
            canonical_headers = (f"content-type:{CONTENT_TYPE}\nhost:{self.host}\n"
                                 f"x-amz-date:{stamp}\nx-amz-target:{target}\n")
            signed = "content-type;host;x-amz-date;x-amz-target"
        canonical_request = (f"POST\n{self.path}\n\n{canonical_headers}\n{signed}\n"
                             f"{hashlib.sha256(body).hexdigest()}")
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        string_to_sign = (f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n"
                          f"{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}")
        signature = hmac.new(self.signing_key(credentials.secret_key, date),
                             string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": target, "X-Amz-Date": stamp}
        if token:
            headers["X-Amz-Security-Token"] = credentials.token
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/"
                                    f"{scope}, SignedHeaders={signed}, Signature={signature}")
        return headers
