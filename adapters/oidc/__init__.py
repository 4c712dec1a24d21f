"""OpenID Connect for the API: bearer JWTs of trusted issuers checked against the keys each
issuer publishes (`verifier`), and why one was refused (`errors`)."""

from adapters.oidc.errors import (
    InvalidJwt,
    IssuerUnavailable,
    JwtExpired,
    JwtNotYetValid,
    UnknownSigningKey,
    UntrustedIssuer,
    UnverifiedEmail,
    WrongAudience,
)
from adapters.oidc.verifier import ALGORITHMS, IssuerKeys, OidcVerifier

__all__ = [
    "ALGORITHMS",
    "InvalidJwt",
    "IssuerKeys",
    "IssuerUnavailable",
    "JwtExpired",
    "JwtNotYetValid",
    "OidcVerifier",
    "UnknownSigningKey",
    "UntrustedIssuer",
    "UnverifiedEmail",
    "WrongAudience",
]
