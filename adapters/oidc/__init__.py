"""OpenID Connect: bearer JWTs of trusted issuers checked against the keys each issuer
publishes (`verifier`), the pages' sign-in by the authorization-code flow with PKCE
(`code_flow`), and why one was refused (`errors`)."""

from adapters.oidc.code_flow import CodeFlow, Endpoints, s256_challenge
from adapters.oidc.errors import (
    CodeRefused,
    InvalidJwt,
    IssuerUnavailable,
    JwtExpired,
    JwtNotYetValid,
    UnknownSigningKey,
    UntrustedIssuer,
    UnverifiedEmail,
    WrongAudience,
    WrongNonce,
)
from adapters.oidc.verifier import ALGORITHMS, IssuerKeys, OidcVerifier

__all__ = [
    "ALGORITHMS",
    "CodeFlow",
    "CodeRefused",
    "Endpoints",
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
    "WrongNonce",
    "s256_challenge",
]
