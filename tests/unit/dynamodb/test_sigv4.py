"""The fast path's SigV4 signer gives byte for byte the headers botocore's SigV4Auth gives
for the same request: endpoints with and without ports, paths, session tokens, any body,
across days (the cached signing key changes with the date and the secret)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from migration.dynamodb.sigv4 import SigV4Signer, endpoint_host

URLS = ["http://127.0.0.1:8000/", "http://localhost:8000", "https://dynamodb.eu-west-1.amazonaws.com/",
        "https://dynamodb.us-east-1.amazonaws.com:443/", "http://LocalHost:80/",
        "http://[::1]:8000/", "https://user@example.com:8443/a/./b/../c/"]


def botocore_headers(url: str, region: str, operation: str, body: bytes,
                     credentials: Credentials, when: dt.datetime) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"DynamoDB_20120810.{operation}"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(credentials.get_frozen_credentials(), "dynamodb", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE  token/with+chars=="])
def test_headers_match_botocore(url: str, token: str | None) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    when = dt.datetime(2026, 12, 3, 21, 55, 3)
    body = b'{"RequestItems":{"Users":[{"PutRequest":{"Item":{"PK":{"S":"\xc3\xa9"}}}}]}}'
    signer = SigV4Signer(url, "eu-west-1")
    ours = signer.headers("BatchWriteItem", body, credentials.get_frozen_credentials(),
                          when.strftime("%Y%m%dT%H%M%SZ"))
    assert ours == botocore_headers(url, "eu-west-1", "BatchWriteItem", body, credentials, when)


def test_host_is_the_one_botocore_signs() -> None:
    from botocore.auth import _host_from_url
    for url in URLS:
        assert endpoint_host(url) == _host_from_url(url)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=300), operation=st.sampled_from(["Scan", "PutItem", "BatchGetItem"]),
       day=st.integers(min_value=0, max_value=3), secret=st.sampled_from(["s1", "s2/+="]),
       second=st.integers(min_value=0, max_value=86399))
def test_cached_signing_key_follows_date_and_secret(body: bytes, operation: str, day: int,
                                                    secret: str, second: int) -> None:
    # One signer across examples, as in a long run: its cached key must follow the date
    # and a rotated secret.
    signer: Any = SIGNER
    credentials = Credentials("AKID", secret)
    when = dt.datetime(2026, 12, 31) + dt.timedelta(days=day, seconds=second)
    ours = signer.headers(operation, body, credentials.get_frozen_credentials(),
                          when.strftime("%Y%m%dT%H%M%SZ"))
    assert ours == botocore_headers("http://127.0.0.1:8000/", "us-east-1", operation, body,
                                    credentials, when)


SIGNER = SigV4Signer("http://127.0.0.1:8000/", "us-east-1")


def test_signing_without_a_given_date_uses_now() -> None:
    credentials = Credentials("AKID", "secret").get_frozen_credentials()
    headers = SigV4Signer("http://127.0.0.1:8000/", "us-east-1").headers("Scan", b"{}", credentials)
    stamp = dt.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 5
