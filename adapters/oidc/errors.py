"""Why a bearer JWT was refused (401), or could not be checked (503): each a core error kind,
with a stable code the client can act on."""

from __future__ import annotations

from expense_core.errors import Unauthenticated, Unavailable


class InvalidJwt(Unauthenticated):
    """Not a signed JWT this service accepts: malformed, an algorithm outside the asymmetric
    ones, a signature that does not verify, or a claim missing or of the wrong type."""

    code = "invalid_jwt"

    def __init__(self, why: str) -> None:
        super().__init__(f"the bearer token is not a valid JWT: {why}")


class UntrustedIssuer(Unauthenticated):
    code = "untrusted_issuer"

    def __init__(self, issuer: object) -> None:
        super().__init__(f"the token's issuer {issuer!r} is not one OIDC_ISSUER names")


class WrongAudience(Unauthenticated):
    code = "wrong_audience"

    def __init__(self) -> None:
        super().__init__("the token is not meant for this service (its aud lacks OIDC_AUDIENCE)")


class WrongNonce(Unauthenticated):
    """An ID token whose `nonce` is not the one its sign-in sent: a token of another sign-in."""

    code = "wrong_nonce"

    def __init__(self) -> None:
        super().__init__("the ID token's nonce is not the one this sign-in sent")


class JwtExpired(Unauthenticated):
    code = "jwt_expired"

    def __init__(self) -> None:
        super().__init__("the bearer token has expired")


class JwtNotYetValid(Unauthenticated):
    code = "jwt_not_yet_valid"

    def __init__(self) -> None:
        super().__init__("the bearer token is not valid yet (nbf or iat is in the future)")


class UnknownSigningKey(Unauthenticated):
    code = "unknown_signing_key"

    def __init__(self, kid: object) -> None:
        super().__init__(f"the issuer publishes no signing key with kid {kid!r}")


class UnverifiedEmail(Unauthenticated):
    code = "unverified_email"

    def __init__(self) -> None:
        super().__init__("the token's email_verified claim is false")


class CodeRefused(Unauthenticated):
    """The issuer's token endpoint would not exchange a sign-in's code for an ID token."""

    code = "code_refused"

    def __init__(self, error: str) -> None:
        super().__init__(f"the identity provider refused to exchange the sign-in's code ({error})")


class IssuerUnavailable(Unavailable):
    """The issuer's discovery document or keys cannot be fetched, and none are kept."""

    code = "issuer_unavailable"

    def __init__(self, issuer: str) -> None:
        super().__init__(f"the keys of issuer {issuer} cannot be fetched now; retry shortly")
