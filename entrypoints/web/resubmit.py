"""Resubmitting an expense that was sent back: a form holding what it says now, changed where
the submitter corrects it, and sent again through the same use case as the API.

Refusals are told next to the field they concern, keeping what was typed; a refusal about the
expense itself (no longer returned, not the submitter's) is the error page.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.response import Redirect, Template

from entrypoints.http.errors import status_of
from entrypoints.http.schemas import MAX_ID, NO_NUL
from entrypoints.web.site import MY_EXPENSES, Viewer, policy_choices, render, waiting
from entrypoints.web.views import FORM, FieldRefused, in_words, submission_field
from expense_core import workflow
from expense_core.errors import Conflict, Forbidden, InvalidInput, NotFound
from expense_core.model import ExpenseId, Money, PolicyId
from expense_core.services import ExpenseService, OrgService, ResubmitExpense

FormText = Annotated[str, msgspec.Meta(pattern=NO_NUL)]
ExpenseIdPath = Annotated[int, PathParameter(ge=1, le=MAX_ID)]


class ResubmitForm(msgspec.Struct):
    policy: FormText = ""
    category: FormText = ""
    amount: FormText = ""
    description: FormText = ""
    idempotency_key: FormText = ""


ResubmitBody = Annotated[ResubmitForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


class ResubmitPages(Controller):
    """The resubmission form of a returned expense, for its submitter."""

    path = "/expenses"

    @get("/{expense_id:int}/resubmit", sync_to_thread=True)
    def form(
        self,
        expense_id: ExpenseIdPath,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
    ) -> Template:
        expense = expenses.explain(ExpenseId(expense_id), viewer.reader).expense
        # Only the submitter of a returned expense gets the form; the engine says why not.
        workflow.check_resubmission(expense, viewer.id)
        typed = ResubmitForm(
            policy=str(expense.policy_id),
            amount=str(expense.amount.value),
            description=expense.description or "",
            idempotency_key=secrets.token_urlsafe(16),
        )
        return _form(viewer, expenses, org, ExpenseId(expense_id), typed)

    @post("/{expense_id:int}/resubmit", sync_to_thread=True, status_code=303)
    def resubmit(
        self,
        expense_id: ExpenseIdPath,
        data: ResubmitBody,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
    ) -> Response[Any]:
        expense = ExpenseId(expense_id)
        try:
            expenses.resubmit(_resubmission(expense, data, viewer))
        except (InvalidInput, Forbidden, Conflict, NotFound) as refused:
            field = submission_field(refused)
            if field == FORM and not isinstance(refused, InvalidInput):
                raise  # about the expense, not the form: the error page says it
            return _form(
                viewer,
                expenses,
                org,
                expense,
                data,
                errors={field: in_words(refused)},
                status_code=status_of(refused),
            )
        return Redirect(f"{MY_EXPENSES}/{expense}?done=resubmit", status_code=303)


def _resubmission(expense: ExpenseId, data: ResubmitForm, viewer: Viewer) -> ResubmitExpense:
    if not data.amount.strip():
        raise FieldRefused("amount", "Enter an amount, such as 4000.00.")
    policy = data.policy.strip()
    if policy and not (policy.isascii() and policy.isdigit() and int(policy) <= MAX_ID):
        raise FieldRefused("policy", "Choose a policy from the list.")
    return ResubmitExpense(
        expense_id=expense,
        user_id=viewer.id,
        amount=Money.parse(data.amount.strip()),
        # A blank description keeps the one it had: a resubmission changes what it names.
        description=data.description if data.description.strip() else None,
        policy_id=PolicyId(int(policy)) if policy else None,
        category=data.category.strip() or None,
        company_id=viewer.company_id,
        idempotency_key=data.idempotency_key or None,
    )


def _form(
    viewer: Viewer,
    expenses: ExpenseService,
    org: OrgService,
    expense_id: ExpenseId,
    typed: ResubmitForm,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return render(
        "resubmit.html",
        viewer,
        waiting=waiting(expenses, viewer),
        expense_id=expense_id,
        **policy_choices(org, viewer),
        typed=typed,
        errors=errors or {},
        form_error=(errors or {}).get(FORM),
        status_code=status_code,
    )
