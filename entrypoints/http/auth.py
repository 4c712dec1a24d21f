"""Who is calling: in demo mode whoever the body says, in token mode the bearer token's holder.

Demo mode (AUTH_MODE=demo) keeps the seed's contract: the actor is the id in the body or query
and anyone can claim to be anyone. Token mode (AUTH_MODE=token) takes the actor from
`Authorization: Bearer <token>`, scopes everything to the token's company, and refuses a body
whose actor id names someone else. OpenID Connect mode (AUTH_MODE=oidc) does the same with a
JWT of a trusted issuer, whose `email` names the user (`oidc_caller`). The admin API is open in
demo mode; with tokens only an `admin` calls it, confined to their company, and new companies
come from `org import`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from litestar import Request

from entrypoints import logs
from entrypoints.ports import IdentityVerifier
from expense_core.errors import AdminOnly, Forbidden, InvalidInput, Unauthenticated, UnknownCompany
from expense_core.model import CompanyId, Member, Role, UserId
from expense_core.services import AwaitedAccessService, SignOnService
from expense_core.visibility import Viewer


class ActorMismatch(Forbidden):
    code = "actor_mismatch"

    def __init__(self, field: str, claimed: int, holder: UserId) -> None:
        super().__init__(f"{field} {claimed} is not the bearer token's user ({holder})")


class ActorRequired(InvalidInput):
    code = "actor_required"

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is required (AUTH_MODE=demo names the actor in the request)")


class CompanyCreationClosed(Forbidden):
    code = "company_creation_closed"

    def __init__(self) -> None:
        super().__init__(
            "with bearer tokens (AUTH_MODE=token or oidc) new companies are created with "
            "`expense-tracker org import`"
        )


@attrs.frozen
class Caller:
    """The authenticated caller, or nobody in particular (demo mode)."""

    member: Member | None = None

    @property
    def company_id(self) -> CompanyId | None:
        """The company every read and command is confined to; None in demo mode."""
        return None if self.member is None else self.member.user.company_id

    @property
    def viewer(self) -> Viewer | None:
        """Who reads expenses: the token's holder, with their role; None in demo mode, which
        reads every company's."""
        return None if self.member is None else Viewer.of(self.member)

    def actor(self, claimed: int | None, field: str) -> UserId:
        """The user a request acts as: the token's holder, or the id the request names.

        Raises:
            ActorMismatch: a token is used and the request names someone else.
            ActorRequired: demo mode and the request names nobody.
        """
        if self.member is None:
            if claimed is None:
                raise ActorRequired(field)
            return UserId(claimed)
        if claimed is not None and claimed != self.member.id:
            raise ActorMismatch(field, claimed, self.member.id)
        return self.member.id


DEMO_CALLER = Caller()


def demo_caller() -> Caller:
    return DEMO_CALLER


def bearer_caller(
    access: AwaitedAccessService,
) -> Callable[[Request[Any, Any, Any]], Awaitable[Caller]]:
    """The dependency that makes a caller of the holder of a request's bearer token, found
    awaited on the event loop (or on a thread, where the store does not await)."""

    async def caller(request: Request[Any, Any, Any]) -> Caller:
        """Raises:
        Unauthenticated: no `Authorization: Bearer` header, or a token nobody holds.
        TokenRevoked, TokenExpired.
        """
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send 'Authorization: Bearer <token>' (AUTH_MODE=token)")
        member = await access.authenticate(token.strip())
        # Every later line of the request, its access line included, says who made it.
        logs.bind_request(user_id=member.id, company_id=member.user.company_id)
        return Caller(member)

    return caller


def oidc_caller(
    verifier: IdentityVerifier, sign_on: SignOnService
) -> Callable[[Request[Any, Any, Any]], Caller]:
    """The dependency that makes a caller of a request's bearer JWT, as `bearer_caller` does of
    a token: the active user its verified e-mail address names in its issuer's company."""

    def caller(request: Request[Any, Any, Any]) -> Caller:
        """Raises:
        Unauthenticated: no `Authorization: Bearer` header, a JWT not to be trusted (a code
            says why: `adapters.oidc.errors`), or one naming no active user.
        Unavailable: the issuer's keys cannot be fetched now.
        """
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send 'Authorization: Bearer <JWT>' (AUTH_MODE=oidc)")
        member = sign_on.member(verifier.verify(token.strip()))
        logs.bind_request(user_id=member.id, company_id=member.user.company_id)
        return Caller(member)

    return caller


def admin_scope(caller: Caller) -> CompanyId | None:
    """The company an admin caller is confined to; None in demo mode.

    Raises:
        AdminOnly: a token of someone who is not an admin.
    """
    if caller.member is None:
        return None
    if caller.member.user.role is not Role.ADMIN:
        raise AdminOnly
    return caller.member.user.company_id


def admin_company(caller: Caller, company_id: int) -> CompanyId:
    """The company an admin request names, if the caller may administer it.

    Raises:
        AdminOnly: a token of someone who is not an admin.
        UnknownCompany: another company than the admin's (as if it did not exist).
    """
    scope = admin_scope(caller)
    if scope is not None and scope != company_id:
        raise UnknownCompany(company_id)
    return CompanyId(company_id)


def allow_company_creation(caller: Caller) -> None:
    """Let a demo caller create companies; with tokens they come from `org import`.

    Raises:
        CompanyCreationClosed: a token's holder, whoever it is.
    """
    if caller.member is not None:
        raise CompanyCreationClosed
