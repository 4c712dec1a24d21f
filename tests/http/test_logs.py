"""Log lines as the service writes them: the request's fields on every line written for it,
and tracebacks without the frames' local variables (a local may hold a token)."""

from __future__ import annotations

import contextvars
import io
import json
import logging
from collections.abc import Iterator

import pytest

from entrypoints import logs

SECRET = "etk_s3cr3t-never-logged"  # noqa: S105 -- a made-up token, looked for in the logs


@pytest.fixture(params=[False, True], ids=["json", "console"])
def written(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.logs.{request.param}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logs.handler(console=request.param, stream=stream)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def authenticate(token: str) -> None:
    raise ValueError("unknown token")


def test_a_traceback_shows_no_local_variables(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written
    try:
        authenticate(SECRET)
    except ValueError:
        logger.exception("authentication failed")

    text = stream.getvalue()
    assert "Traceback" in text
    assert "unknown token" in text
    assert SECRET not in text


def test_a_line_written_for_a_request_carries_its_fields() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.logs.request")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logs.handler(console=False, stream=stream))
    logger.info("before any request")

    def serve() -> None:
        logs.begin_request("req-42")
        logs.bind_request(user_id=7, company_id=1)
        logger.info("inside")

    contextvars.copy_context().run(serve)  # as each request runs in a context of its own
    logger.info("after")

    before, inside, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "request_id" not in before
    assert "request_id" not in after
    assert inside["request_id"] == "req-42"
    assert (inside["user_id"], inside["company_id"]) == (7, 1)
    assert inside["event"] == "inside"
    assert inside["level"] == "info"
    assert inside["logger"] == "tests.logs.request"
    assert inside["timestamp"].endswith("Z")
