"""The webhook signature a receiver checks (docs/notifications.md): HMAC-SHA256 over
"<timestamp>.<body>" with the webhook's secret, within a tolerance of the receiver's
clock."""

from __future__ import annotations

import hashlib
import hmac

from ticketflow.webhooks import TOLERANCE_SECONDS, signature, verify

SECRET = "whsec_test"
BODY = b'{"notification_id":"n-1","text":"caf\xc3\xa9"}'
NOW = 1_795_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_as_documented() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == f"t={NOW},v1={expected}"


def test_a_receiver_accepts_the_signed_body_and_nothing_else() -> None:
    header = signature(SECRET, NOW, BODY)
    assert verify(SECRET, header, BODY, NOW + 10)
    assert not verify(SECRET, header, BODY.replace(b"n-1", b"n-2"), NOW)  # body changed
    assert not verify("whsec_other", header, BODY, NOW)  # another webhook's secret
    assert not verify(SECRET, header.replace(f"t={NOW}", f"t={NOW + 1}"), BODY, NOW)
    assert not verify(SECRET, "v1=abc", BODY, NOW) and not verify(SECRET, "", BODY, NOW)


def test_a_replayed_delivery_is_refused_once_its_timestamp_is_out_of_tolerance() -> None:
    header = signature(SECRET, NOW, BODY)
    assert verify(SECRET, header, BODY, NOW + TOLERANCE_SECONDS)
    assert not verify(SECRET, header, BODY, NOW + TOLERANCE_SECONDS + 1)
    assert not verify(SECRET, header, BODY, NOW - TOLERANCE_SECONDS - 1)
