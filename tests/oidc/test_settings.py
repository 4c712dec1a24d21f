"""The OpenID Connect settings, as read from the environment, and where they are documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.settings import ENV_NAMES, AuthMode, InvalidSetting, Settings

ROOT = Path(__file__).resolve().parents[2]
OIDC = {"AUTH_MODE": "oidc", "OIDC_AUDIENCE": "expense-tracker-api"}


def test_each_issuer_signs_in_its_own_company_or_the_default_one() -> None:
    settings = Settings.from_env(
        {
            **OIDC,
            "OIDC_ISSUER": " https://login.acme.example=1, https://idp.example/realms/x ,",
            "OIDC_COMPANY_ID": "3",
            "OIDC_LEEWAY_S": "30",
            "OIDC_JWKS_COOLDOWN_S": "5",
            "OIDC_JWKS_MAX_AGE_S": "600",
        }
    )

    assert settings.auth_mode is AuthMode.OIDC
    assert settings.oidc_companies == {
        "https://login.acme.example": 1,
        "https://idp.example/realms/x": 3,
    }
    assert settings.oidc_audience == "expense-tracker-api"
    assert (
        settings.oidc_leeway_s,
        settings.oidc_jwks_cooldown_s,
        settings.oidc_jwks_max_age_s,
    ) == (30, 5, 600)


def test_the_defaults_allow_a_minute_of_skew_and_keep_keys_an_hour() -> None:
    settings = Settings.from_env({**OIDC, "OIDC_ISSUER": "https://idp.example=1"})

    assert (settings.oidc_leeway_s, settings.oidc_jwks_cooldown_s) == (60, 10)
    assert settings.oidc_jwks_max_age_s == 3600


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({**OIDC}, "OIDC_ISSUER"),
        ({**OIDC, "OIDC_ISSUER": " , "}, "OIDC_ISSUER"),
        ({"AUTH_MODE": "oidc", "OIDC_ISSUER": "https://idp.example=1"}, "OIDC_AUDIENCE"),
        ({**OIDC, "OIDC_ISSUER": "https://idp.example"}, "OIDC_COMPANY_ID"),
        ({**OIDC, "OIDC_ISSUER": "https://idp.example=acme"}, "OIDC_ISSUER"),
        ({**OIDC, "OIDC_ISSUER": "https://idp.example=0"}, "OIDC_ISSUER"),
        ({**OIDC, "OIDC_ISSUER": "idp.example=1"}, "OIDC_ISSUER"),
        ({**OIDC, "OIDC_ISSUER": "https://idp.example", "OIDC_COMPANY_ID": "0"}, "OIDC_COMPANY_ID"),
        ({**OIDC, "OIDC_ISSUER": "https://idp.example=1", "OIDC_LEEWAY_S": "601"}, "OIDC_LEEWAY_S"),
        ({"AUTH_MODE": "saml"}, "'oidc'"),
    ],
)
def test_an_oidc_mode_that_cannot_work_is_refused_naming_the_setting(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidSetting, match=named):
        Settings.from_env(environ)


def test_other_modes_ignore_the_oidc_settings_unless_they_are_malformed() -> None:
    settings = Settings.from_env({"AUTH_MODE": "token", "OIDC_ISSUER": "https://idp.example"})

    assert settings.oidc_issuers == (("https://idp.example", None),)


def test_every_oidc_setting_is_documented() -> None:
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    security = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    names = [name for name in ENV_NAMES.values() if name.startswith("OIDC_")]

    assert len(names) == 8
    for name in names:
        assert f"`{name}`" in configuration, name
        assert name in security, name
