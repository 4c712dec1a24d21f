"""Delegation routes: a user names who covers for them while away (`/api/users/{id}/delegation`).

In demo mode the path's user acts, as the body's ids do elsewhere. With tokens the token's
holder acts: on their own delegation, or, as an admin, on anyone's in their company; another
company's users are unknown (404).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from entrypoints.http.auth import Caller
from entrypoints.http.delegation_schemas import DelegationBody, DelegationOut, delegation_out
from entrypoints.http.errors import documented
from entrypoints.http.schemas import MAX_ID
from expense_core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from expense_core.model import UserId
from expense_core.services import ClearDelegation, DelegationService, SetDelegation

UserIdPath = Annotated[
    int, PathParameter(ge=1, le=MAX_ID, description="The user who is (or will be) away.")
]
AUTH = (Unauthenticated,)


class DelegationController(Controller):
    """Who acts for whom while they are away."""

    path = "/api/users/{user_id:int}/delegation"
    tags = ["delegations"]  # noqa: RUF012 -- Litestar reads this class attribute

    @put(
        status_code=200,
        sync_to_thread=True,
        summary="Name a delegate",
        description=(
            "From `starts_at` (included) until `ends_at` (excluded) the delegate may approve or "
            "reject every step assigned to the user, where they would be allowed to themselves "
            "apart from team scope: not as the submitter, not when they approve another step "
            "of the expense, and only at the step's required level or more senior (403 "
            "`delegate_not_eligible` otherwise). Replaces the user's previous delegation. "
            "Refused: oneself (`self_delegation`), an unknown delegate or another company's "
            "(`unknown_delegate`), an inactive one (`delegate_inactive`), an auditor "
            "(`delegate_auditor`), `ends_at` not after "
            "`starts_at` (`delegation_period_empty`), a time without a zone "
            "(`naive_timestamp`), and a delegate who has named the user for an overlapping "
            "period (409 `delegation_cycle`). With tokens, only an admin sets someone else's "
            "(403 `admin_only`)."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound, Conflict, body=True),
    )
    def set_delegation(
        self,
        user_id: UserIdPath,
        data: JSONBody[DelegationBody],
        delegations: NamedDependency[DelegationService],
        caller: NamedDependency[Caller],
    ) -> DelegationOut:
        state = delegations.set(
            SetDelegation(
                user_id=UserId(user_id),
                delegate_id=UserId(data.delegate_id),
                starts_at=data.starts_at,
                ends_at=data.ends_at,
                note=data.note,
                actor_id=None if caller.member is None else caller.member.id,
                company_id=caller.company_id,
            )
        )
        return delegation_out(state)

    @get(
        sync_to_thread=True,
        summary="A user's delegate",
        description="The stored delegation, whatever its period (404 `no_delegation` if none).",
        responses=documented(*AUTH, NotFound),
    )
    def delegation(
        self,
        user_id: UserIdPath,
        delegations: NamedDependency[DelegationService],
        caller: NamedDependency[Caller],
    ) -> DelegationOut:
        return delegation_out(delegations.get(UserId(user_id), caller.company_id))

    @delete(
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        summary="End a delegation",
        description=(
            "From now on the delegate acts for the user no more (404 `no_delegation` if there "
            "was none). With tokens, only an admin ends someone else's (403 `admin_only`)."
        ),
        responses=documented(*AUTH, Forbidden, NotFound),
    )
    def clear_delegation(
        self,
        user_id: UserIdPath,
        delegations: NamedDependency[DelegationService],
        caller: NamedDependency[Caller],
    ) -> None:
        delegations.clear(
            ClearDelegation(
                user_id=UserId(user_id),
                actor_id=None if caller.member is None else caller.member.id,
                company_id=caller.company_id,
            )
        )
