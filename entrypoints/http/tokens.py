"""Bearer tokens (`/api/tokens`): issued, listed and revoked over HTTP.

With tokens, anyone issues, lists and revokes their own, and an admin anyone's in the company;
another company's tokens and users are unknown (404). In demo mode the request names the user
(`user_id`) and anyone may do anything, as elsewhere in the demo. A revoked or expired token
answers 401 from the next request on. Bodies and responses are in `token_schemas.py`.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from entrypoints.http.auth import ActorRequired, Caller
from entrypoints.http.errors import documented
from entrypoints.http.schemas import MAX_ID
from entrypoints.http.token_schemas import (
    NewTokenOut,
    TokenBody,
    TokenList,
    new_token_out,
    token_out,
)
from expense_core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from expense_core.model import UserId
from expense_core.services import AccessService, IssueToken, ListTokens, RevokeToken

AUTH = (Unauthenticated, Forbidden)
TokenIdPath = Annotated[
    str,
    PathParameter(
        min_length=1, max_length=64, description="The token's id: the 16 hex digits after `et_`."
    ),
]
UserQuery = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        le=MAX_ID,
        required=False,
        description="Whose tokens (required with AUTH_MODE=demo); with a token, the caller's "
        "when omitted, or the whole company's for an admin.",
    ),
]


class TokenController(Controller):
    """Issue, list and revoke bearer tokens."""

    path = "/api/tokens"
    tags = ["tokens"]  # noqa: RUF012 -- Litestar reads this class attribute

    @post(
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        cache_control=CacheControlHeader(no_store=True),
        summary="Issue a token",
        description=(
            "Answers the token's record with the bearer token itself (`token`), shown this "
            "once: only its hash is stored. It lives `ttl_days` (1 to 730, 90 when omitted). "
            "With a token, `user_id` is the caller when omitted; naming someone else takes an "
            "admin of their company (403 `admin_only`), and another company's user is unknown "
            "(404 `unknown_user`). An inactive user gets none (403 `inactive_user`)."
        ),
        responses=documented(*AUTH, InvalidInput, NotFound, body=True),
    )
    def issue(
        self,
        data: JSONBody[TokenBody],
        access: NamedDependency[AccessService],
        caller: NamedDependency[Caller],
    ) -> NewTokenOut:
        if caller.member is None:
            if data.user_id is None:
                raise ActorRequired("user_id")
            command = IssueToken(user_id=UserId(data.user_id), ttl=data.ttl(), name=data.name)
        else:
            command = IssueToken(
                user_id=caller.member.id if data.user_id is None else UserId(data.user_id),
                ttl=data.ttl(),
                name=data.name,
                actor_id=caller.member.id,
                company_id=caller.company_id,
            )
        return new_token_out(access.issue(command))

    @get(
        sync_to_thread=True,
        summary="List tokens",
        description=(
            "Newest first, revoked and expired ones too, never a secret. With a token: the "
            "caller's, or for an admin the whole company's; `user_id` narrows it to one user "
            "(someone else's takes an admin: 403 `admin_only`). In demo mode `user_id` is "
            "required."
        ),
        responses=documented(*AUTH, InvalidInput, NotFound),
    )
    def tokens(
        self,
        access: NamedDependency[AccessService],
        caller: NamedDependency[Caller],
        user_id: UserQuery = None,
    ) -> TokenList:
        user = None if user_id is None else UserId(user_id)
        if caller.member is None:
            if user is None:
                raise ActorRequired("user_id")
            query = ListTokens(user_id=user)
        else:
            query = ListTokens(
                user_id=user, company_id=caller.company_id, actor_id=caller.member.id
            )
        return TokenList([token_out(t) for t in access.tokens(query)])

    @delete(
        "/{token_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        summary="Revoke a token",
        description=(
            "From the next request on, the token answers 401 (`token_revoked`), on every "
            "server process. Revoking a revoked token changes nothing. Unknown, or another "
            "company's: 404 `unknown_token`; with a token, someone else's takes an admin "
            "(403 `admin_only`)."
        ),
        responses=documented(*AUTH, NotFound),
    )
    def revoke(
        self,
        token_id: TokenIdPath,
        access: NamedDependency[AccessService],
        caller: NamedDependency[Caller],
    ) -> None:
        if caller.member is None:
            access.revoke(RevokeToken(token_id=token_id))
        else:
            access.revoke(
                RevokeToken(
                    token_id=token_id, actor_id=caller.member.id, company_id=caller.company_id
                )
            )
