"""Log lines as the service writes them: the request's fields on every line written for it,
and tracebacks without the frames' local variables (a local may hold a token)."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

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


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """Logging configured to write to a string, as a server configures it; restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure("INFO", console=False, stream=stream)
    yield stream
    logs.close_access_lines()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_access_lines_carry_their_requests_fields_in_the_shape_of_every_other_line(
    configured: io.StringIO,
) -> None:
    access = logs.access_logger()
    assert access is not None

    def serve(request_id: str) -> None:
        logs.begin_request(request_id)
        logs.bind_request(user_id=7, company_id=1)
        logging.getLogger("tests.logs.beside").warning("beside")
        access.info("request", method="GET", route="/api/expenses/{expense_id}", status=200)

    for request_id in ("req-1", "req-2"):
        contextvars.copy_context().run(serve, request_id)
    logs.close_access_lines()  # what the writer had not written yet, as at exit

    lines = [json.loads(line) for line in configured.getvalue().splitlines()]
    written = [line for line in lines if line["logger"] == logs.ACCESS_LOGGER]
    assert [line["request_id"] for line in written] == ["req-1", "req-2"]
    first, beside = written[0], next(line for line in lines if line["event"] == "beside")
    assert set(first) == set(beside) - {"event"} | {"event", "method", "route", "status"}
    assert (first["event"], first["level"], first["user_id"]) == ("request", "info", 7)
    assert first["timestamp"].endswith("Z")


def test_no_access_logger_when_its_level_is_above_info(configured: io.StringIO) -> None:
    logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.WARNING)
    try:
        assert logs.access_logger() is None
    finally:
        logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.NOTSET)


def test_every_access_line_handed_over_is_written_once_stamped_when_handed_over(
    configured: io.StringIO,
) -> None:
    access = logs.access_logger()
    assert access is not None
    threads, each = 4, 500
    handed_over_after = datetime.now(UTC)

    def serve(thread: int) -> None:
        for n in range(each):
            logs.begin_request(f"req-{thread}-{n}")
            access.info("request", status=200)
            if n % 100 == 0:
                logs.write_access_lines()  # written meanwhile, as by the writer or a shutdown

    serving = [
        threading.Thread(target=contextvars.copy_context().run, args=(serve, t))
        for t in range(threads)
    ]
    for thread in serving:
        thread.start()
    for thread in serving:
        thread.join()
    written_before = datetime.now(UTC)
    time.sleep(logs.ACCESS_FLUSH_S)  # rendered later than handed over...
    logs.close_access_lines()

    lines = [json.loads(line) for line in configured.getvalue().splitlines()]
    ids = [line["request_id"] for line in lines if line["logger"] == logs.ACCESS_LOGGER]
    assert sorted(ids) == sorted(f"req-{t}-{n}" for t in range(threads) for n in range(each))
    for thread in range(threads):  # each thread's lines in the order it handed them over
        own = [i for i in ids if i.startswith(f"req-{thread}-")]
        assert own == [f"req-{thread}-{n}" for n in range(each)]
    stamps = {datetime.fromisoformat(line["timestamp"]) for line in lines}
    assert all(handed_over_after <= stamp <= written_before for stamp in stamps)  # ...stamped then


def test_a_line_that_cannot_be_rendered_costs_only_itself(configured: io.StringIO) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    access = logs.access_logger()
    assert access is not None
    logs.begin_request("req-bad")
    access.info("request", odd=Unprintable())
    logs.begin_request("req-good")
    access.info("request", status=200)
    logs.close_access_lines()

    lines = [json.loads(line) for line in configured.getvalue().splitlines()]
    assert [line.get("request_id") for line in lines if line["logger"] == logs.ACCESS_LOGGER] == [
        "req-good"
    ]
    assert any(line["event"] == "could not render an access line" for line in lines)
