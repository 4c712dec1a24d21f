"""Standard Webhooks signatures: what we send verifies with the reference implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from adapters.webhooks import signing

BODY = b'{"type":"expense.approved","timestamp":"2024-05-01T12:00:00Z","data":{"expense":{}}}'


def test_a_new_secret_is_whsec_and_the_base64_of_24_random_bytes() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 24
    assert first != second


def test_the_headers_carry_id_timestamp_signature_and_json_type() -> None:
    secret = signing.new_secret()
    headers = signing.headers(secret, "msg_1", 1714564800, BODY)
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1714564800",
        "webhook-signature": signing.sign(secret, "msg_1", 1714564800, BODY),
        "content-type": "application/json",
    }


def test_what_we_sign_the_reference_implementation_verifies() -> None:
    secret = signing.new_secret()
    headers = signing.headers(secret, "msg_2", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "expense.approved",
        "timestamp": "2024-05-01T12:00:00Z",
        "data": {"expense": {}},
    }


def test_a_body_that_is_not_utf8_is_signed_byte_for_byte() -> None:
    secret, body = signing.new_secret(), b"\xff\xfe{}"
    headers = signing.headers(secret, "msg_3", int(time.time()), body)
    assert Webhook(secret).verify(body, headers, json_parse=False) is None


def test_a_tampered_body_fails_verification() -> None:
    secret = signing.new_secret()
    headers = signing.headers(secret, "msg_4", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"approved", b"rejected"), headers)


def test_a_signature_moved_to_another_message_id_fails_verification() -> None:
    secret = signing.new_secret()
    headers = signing.headers(secret, "msg_4", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_other"})


def test_a_signature_under_another_secret_fails_verification() -> None:
    headers = signing.headers(signing.new_secret(), "msg_5", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


def test_the_signature_is_hmac_sha256_of_id_timestamp_body_under_the_decoded_secret() -> None:
    key = bytes(range(24))
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = hmac.new(key, b"msg_6.1700000000." + BODY, hashlib.sha256).digest()
    assert signing.sign(secret, "msg_6", 1700000000, BODY) == "v1," + base64.b64encode(
        expected
    ).decode("ascii")


def test_the_specification_test_vector_reproduces() -> None:
    # Published with the Standard Webhooks reference libraries.
    signature = signing.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    "secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_"]
)
def test_a_secret_that_is_not_whsec_base64_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        signing.sign(secret, "msg_7", 1700000000, BODY)
