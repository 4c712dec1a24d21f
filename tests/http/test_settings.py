"""The observability switches, as read from the environment."""

from __future__ import annotations

import pytest

from entrypoints.settings import InvalidSetting, LogFormat, Settings


def test_everything_is_on_and_untraced_by_default() -> None:
    settings = Settings.from_env({"LOG_FORMAT": "json"})

    assert (settings.metrics, settings.access_log, settings.metrics_by_company) == (
        True,
        True,
        False,
    )
    assert settings.otel_endpoint is None
    assert settings.log_format is LogFormat.JSON


@pytest.mark.parametrize(
    ("raw", "read"), [("false", False), ("0", False), ("OFF", False), ("yes", True)]
)
def test_switches_read_the_usual_words(raw: str, read: bool) -> None:
    settings = Settings.from_env({"METRICS": raw, "ACCESS_LOG": raw, "METRICS_BY_COMPANY": raw})

    assert (settings.metrics, settings.access_log, settings.metrics_by_company) == (read,) * 3


def test_tracing_and_the_console_are_asked_for_by_name() -> None:
    settings = Settings.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "LOG_FORMAT": "Console"}
    )

    assert settings.otel_endpoint == "http://127.0.0.1:4318"
    assert settings.log_format is LogFormat.CONSOLE


@pytest.mark.parametrize(
    ("name", "raw"), [("METRICS", "maybe"), ("ACCESS_LOG", "2"), ("LOG_FORMAT", "xml")]
)
def test_a_switch_that_is_neither_is_refused_naming_it(name: str, raw: str) -> None:
    with pytest.raises(InvalidSetting, match=name):
        Settings.from_env({name: raw})


def test_the_session_secret_is_read_and_never_shown() -> None:
    settings = Settings.from_env({"SESSION_SECRET": "  s3cret-of-the-pages  "})

    assert settings.session_secret == "s3cret-of-the-pages"  # noqa: S105 -- a test value
    assert "s3cret" not in repr(settings)
    assert Settings.from_env({}).session_secret is None
