"""Standard Webhooks signing: our sign/verify against each other and the reference library."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from nexus_async.signing import DEFAULT_TOLERANCE, SignatureError, generate_secret, sign, verify

SECRET = base64.b64encode(bytes(range(32))).decode()
OTHER = base64.b64encode(bytes(range(1, 33))).decode()
NOW = 1_700_000_000
BODY = b'{"deliveryId":"delivery_1","predictions":[]}'


def test_generate_secret_is_32_fresh_random_bytes() -> None:
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(len(base64.b64decode(s, validate=True)) == 32 for s in secrets)


def test_signature_matches_the_reference_library() -> None:
    reference = Webhook(SECRET).sign(
        "msg_1", datetime.fromtimestamp(NOW, tz=timezone.utc), BODY.decode()
    )
    assert sign(SECRET, "msg_1", NOW, BODY) == reference
    assert sign("whsec_" + SECRET, "msg_1", NOW, BODY.decode()) == reference


@given(body=st.binary(max_size=200).map(lambda b: b.hex()), msg_id=st.text("abc_-123", min_size=1))
def test_reference_library_verifies_our_signatures(body: str, msg_id: str) -> None:
    import time

    timestamp = int(time.time())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(SECRET, msg_id, timestamp, body),
    }
    Webhook(SECRET).verify(body, headers, json_parse=False)
    verify(SECRET, msg_id, str(timestamp), body, headers["webhook-signature"])


def test_verify_accepts_a_genuine_message() -> None:
    verify(SECRET, "msg_1", NOW, BODY, sign(SECRET, "msg_1", NOW, BODY), now=NOW + 10)
    verify(SECRET, "msg_1", str(NOW), BODY, sign(SECRET, "msg_1", NOW, BODY), now=NOW)


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [
        ("msg_2", NOW, BODY),  # another id
        ("msg_1", NOW + 1, BODY),  # another timestamp
        ("msg_1", NOW, BODY + b" "),  # a changed body
    ],
)
def test_verify_rejects_any_change(msg_id: str, timestamp: int, body: bytes) -> None:
    signature = sign(SECRET, "msg_1", NOW, BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, msg_id, timestamp, body, signature, now=NOW)


def test_verify_rejects_the_wrong_secret() -> None:
    with pytest.raises(SignatureError):
        verify(OTHER, "msg_1", NOW, BODY, sign(SECRET, "msg_1", NOW, BODY), now=NOW)


@pytest.mark.parametrize("offset", [DEFAULT_TOLERANCE + 1, -DEFAULT_TOLERANCE - 1])
def test_verify_rejects_timestamps_beyond_tolerance(offset: float) -> None:
    signature = sign(SECRET, "msg_1", NOW, BODY)
    with pytest.raises(SignatureError, match="away from now"):
        verify(SECRET, "msg_1", NOW, BODY, signature, now=NOW + offset)
    verify(SECRET, "msg_1", NOW, BODY, signature, now=NOW + offset, tolerance=abs(offset) + 1)


def test_verify_accepts_one_good_signature_among_several() -> None:
    good = sign(SECRET, "msg_1", NOW, BODY)
    bad = sign(OTHER, "msg_1", NOW, BODY)
    verify(SECRET, "msg_1", NOW, BODY, f"v1a,xyz {bad} {good}", now=NOW)
    with pytest.raises(SignatureError):
        verify(SECRET, "msg_1", NOW, BODY, f"{bad} v2,{good[3:]}", now=NOW)


def test_verify_accepts_any_of_several_secrets_for_rotation() -> None:
    signature = sign(OTHER, "msg_1", NOW, BODY)
    verify([SECRET, OTHER], "msg_1", NOW, BODY, signature, now=NOW)
    with pytest.raises(SignatureError):
        verify([SECRET], "msg_1", NOW, BODY, signature, now=NOW)
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify([], "msg_1", NOW, BODY, signature, now=NOW)


@pytest.mark.parametrize("header", ["", "v1", "v1,", "v1,not base64!", "garbage"])
def test_verify_rejects_malformed_signature_headers(header: str) -> None:
    with pytest.raises(SignatureError):
        verify(SECRET, "msg_1", NOW, BODY, header, now=NOW)


@pytest.mark.parametrize("timestamp", ["", "12.5", "abc", "-5"])
def test_verify_rejects_malformed_timestamps(timestamp: str) -> None:
    with pytest.raises(SignatureError, match="not an integer"):
        verify(SECRET, "msg_1", timestamp, BODY, sign(SECRET, "msg_1", NOW, BODY), now=NOW)


def test_bad_secrets_raise_signature_error_a_value_error() -> None:
    with pytest.raises(SignatureError, match="base64"):
        sign("not base64 !", "msg_1", NOW, BODY)
    with pytest.raises(ValueError, match="empty"):
        sign("", "msg_1", NOW, BODY)
