"""Routes: each handler reads its request, calls one use case and maps the result back.

Handlers are synchronous (the use cases are) and run in a worker thread, but for the busiest
(a submission, an approval, a status page), which await theirs on the event loop
(`AwaitedExpenseService`);
they never catch domain errors, which `errors.py` turns into responses.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from entrypoints.container import Database
from entrypoints.http.auth import Caller
from entrypoints.http.errors import documented, refusal
from entrypoints.http.expense_schemas import (
    ApproveBody,
    ApproveResponse,
    BulkBody,
    BulkResponse,
    ExpensePage,
    ExplainResponse,
    HistoryResponse,
    InboxPage,
    RejectBody,
    RejectResponse,
    ResubmitBody,
    SendBackBody,
    SendBackResponse,
    StatusResponse,
    SubmitBody,
    SubmitResponse,
    WithdrawBody,
    WithdrawResponse,
    approve_response,
    bulk_decisions,
    bulk_response,
    expense_page,
    explain_response,
    history_response,
    inbox_page,
    reject_response,
    resubmit_response,
    send_back_response,
    status_response,
    submit_response,
    withdraw_response,
)
from entrypoints.http.schemas import MAX_ID, Healthy, Probe, parse_amount
from expense_core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
    UnknownCompany,
)
from expense_core.model import CompanyId, ExpenseId, ExpenseStatus, PolicyId, UserId
from expense_core.services import (
    MAX_PAGE,
    ApproveStep,
    AwaitedExpenseService,
    DecideInBulk,
    ExpenseService,
    RejectExpense,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from expense_core.workflow import Decision

ExpenseIdPath = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="The expense's id.")]
Cursor = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        le=MAX_ID,
        required=False,
        description="The `next_cursor` of the previous page; omit it for the first page.",
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size (1 to 100).")]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=255,
        description=(
            "Makes the submission safe to retry: the same key with the same body answers with "
            "the first response and creates nothing; with another body it is refused (409)."
        ),
    ),
]
DecisionKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=255,
        description=(
            "Makes the decision safe to retry: the same key with the same body answers with the "
            "first response (`Idempotent-Replayed: true`), even if the expense has moved on "
            "since, and changes nothing; with another body it is refused (409). A refused "
            "decision stores no key. Keys are the acting user's, shared with submissions."
        ),
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"
T = TypeVar("T")

AUTH = (Unauthenticated,)  # every route that acts for someone answers 401 in token mode


class ExpenseController(Controller):
    """The seed's expense endpoints and their siblings."""

    path = "/api"
    tags = ["expenses"]  # noqa: RUF012 -- Litestar reads this class attribute

    @post(
        "/expenses",
        status_code=HTTP_201_CREATED,
        summary="Submit an expense",
        response_description="The stored expense and who approves each step.",
        description=(
            "Routes the expense to its approvers (one per policy step) and stores it pending. "
            "Name the policy with `policy_id`, or give `category` and the one active policy of "
            "that category whose range holds the amount is used."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound, Conflict, body=True),
    )
    async def submit(
        self,
        data: JSONBody[SubmitBody],
        awaited: NamedDependency[AwaitedExpenseService],
        caller: NamedDependency[Caller],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SubmitResponse]:
        submitted = await awaited.submit(
            SubmitExpense(
                user_id=caller.actor(data.user_id, "user_id"),
                amount=parse_amount(data.amount),
                description=data.description,
                policy_id=None if data.policy_id is None else PolicyId(data.policy_id),
                category=data.category,
                company_id=caller.company_id,
                idempotency_key=idempotency_key,
            )
        )
        headers = {REPLAYED_HEADER: "true"} if submitted.replayed else {}
        return Response(
            submit_response(submitted),
            status_code=HTTP_201_CREATED,
            headers=headers,
        )

    @post(
        "/expenses/approve",
        status_code=200,
        summary="Approve a step",
        description=(
            "The approver of the expense's current required step (or of a pending optional "
            "step) approves it; the expense is approved when no required step is left pending."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound, Conflict, body=True),
    )
    async def approve(
        self,
        data: JSONBody[ApproveBody],
        awaited: NamedDependency[AwaitedExpenseService],
        caller: NamedDependency[Caller],
        idempotency_key: DecisionKey = None,
    ) -> Response[ApproveResponse]:
        decision = await awaited.approve(
            ApproveStep(
                expense_id=ExpenseId(data.expense_id),
                user_id=caller.actor(data.approver_id, "approver_id"),
                comments=data.comments,
                company_id=caller.company_id,
                idempotency_key=idempotency_key,
            )
        )
        return _decided(approve_response(decision), decision)

    @post(
        "/expenses/reject",
        status_code=200,
        sync_to_thread=True,
        summary="Reject an expense",
        description=(
            "The approver of the current required step rejects the expense with a reason; "
            "the remaining steps are skipped."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound, Conflict, body=True),
    )
    def reject(
        self,
        data: JSONBody[RejectBody],
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
        idempotency_key: DecisionKey = None,
    ) -> Response[RejectResponse]:
        decision = expenses.reject(
            RejectExpense(
                expense_id=ExpenseId(data.expense_id),
                user_id=caller.actor(data.approver_id, "approver_id"),
                reason=data.reason,
                company_id=caller.company_id,
                idempotency_key=idempotency_key,
            )
        )
        return _decided(reject_response(decision), decision)

    @post(
        "/expenses/{expense_id:int}/withdraw",
        status_code=200,
        sync_to_thread=True,
        summary="Withdraw an expense",
        description="The submitter withdraws a pending expense; its pending steps are skipped.",
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound, Conflict, body=True),
    )
    def withdraw(
        self,
        expense_id: ExpenseIdPath,
        data: JSONBody[WithdrawBody],
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
        idempotency_key: DecisionKey = None,
    ) -> Response[WithdrawResponse]:
        decision = expenses.withdraw(
            WithdrawExpense(
                expense_id=ExpenseId(expense_id),
                user_id=caller.actor(data.user_id, "user_id"),
                company_id=caller.company_id,
                idempotency_key=idempotency_key,
            )
        )
        return _decided(withdraw_response(decision), decision)

    @post(
        "/expenses/send-back",
        status_code=200,
        sync_to_thread=True,
        summary="Send an expense back",
        description=(
            "The approver of the current required step returns the expense to its submitter "
            "with a reason: it becomes `returned`, its pending steps are skipped, and it waits "
            "for the submitter to resubmit or withdraw it."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound, Conflict, body=True),
    )
    def send_back(
        self,
        data: JSONBody[SendBackBody],
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
        idempotency_key: DecisionKey = None,
    ) -> Response[SendBackResponse]:
        decision = expenses.send_back(
            SendBack(
                expense_id=ExpenseId(data.expense_id),
                user_id=caller.actor(data.approver_id, "approver_id"),
                reason=data.reason,
                company_id=caller.company_id,
                idempotency_key=idempotency_key,
            )
        )
        return _decided(send_back_response(decision), decision)

    @post(
        "/expenses/{expense_id:int}/resubmit",
        status_code=200,
        sync_to_thread=True,
        summary="Resubmit a returned expense",
        response_description="The expense, pending again, and who approves each step now.",
        description=(
            "The submitter resubmits an expense that was sent back, changing its amount, "
            "description, policy (`policy_id`) or category if need be; the policy is checked "
            "again and every step is routed afresh under today's organisation. The expense keeps "
            "its id; its approvals show the new round, its history every round."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound, Conflict, body=True),
    )
    def resubmit(
        self,
        expense_id: ExpenseIdPath,
        data: JSONBody[ResubmitBody],
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
        idempotency_key: DecisionKey = None,
    ) -> Response[SubmitResponse]:
        submitted = expenses.resubmit(
            ResubmitExpense(
                expense_id=ExpenseId(expense_id),
                user_id=caller.actor(data.user_id, "user_id"),
                amount=None if data.amount is None else parse_amount(data.amount),
                description=data.description,
                policy_id=None if data.policy_id is None else PolicyId(data.policy_id),
                category=data.category,
                company_id=caller.company_id,
                idempotency_key=idempotency_key,
            )
        )
        headers = {REPLAYED_HEADER: "true"} if submitted.replayed else {}
        return Response(resubmit_response(submitted), headers=headers)

    @get(
        "/expenses/{expense_id:int}/status",
        summary="Expense status",
        description="The expense with its approval steps, their approvers and decisions.",
        responses=documented(*AUTH, NotFound),
    )
    async def status(
        self,
        expense_id: ExpenseIdPath,
        awaited: NamedDependency[AwaitedExpenseService],
        caller: NamedDependency[Caller],
    ) -> StatusResponse:
        return status_response(await awaited.status(ExpenseId(expense_id), caller.viewer))

    @get(
        "/expenses",
        sync_to_thread=True,
        summary="List expenses",
        description=(
            "A company's expenses, newest first, optionally of one submitter or one status. "
            "In demo mode the company is `company_id`, or that of `user_id`; with a token it is "
            "the token's."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound),
    )
    def list_expenses(
        self,
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
        user_id: Annotated[
            int | None,
            QueryParameter(ge=1, le=MAX_ID, required=False, description="Only this submitter's."),
        ] = None,
        status: Annotated[
            ExpenseStatus | None, QueryParameter(required=False, description="Only in this status.")
        ] = None,
        company_id: Annotated[
            int | None,
            QueryParameter(
                ge=1, le=MAX_ID, required=False, description="The company (demo mode only)."
            ),
        ] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> ExpensePage:
        page = expenses.list_expenses(
            _listing_viewer(expenses, caller, company_id, user_id),
            user_id=None if user_id is None else UserId(user_id),
            status=status,
            cursor=cursor,
            limit=limit,
        )
        return expense_page(page)

    @get(
        "/approvals",
        sync_to_thread=True,
        summary="An approver's inbox",
        description=(
            "The steps the approver can act on now: each pending expense's current required "
            "step, and pending optional steps; oldest expense first."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, NotFound),
    )
    def inbox(
        self,
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
        approver_id: Annotated[
            int | None,
            QueryParameter(
                ge=1,
                le=MAX_ID,
                required=False,
                description="The approver (required in demo mode; the token's user otherwise).",
            ),
        ] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> InboxPage:
        approver = caller.actor(approver_id, "approver_id")
        page = expenses.inbox(approver, caller.viewer, cursor=cursor, limit=limit)
        return inbox_page(page)

    @post(
        "/approvals/bulk",
        status_code=200,
        sync_to_thread=True,
        summary="Decide in bulk",
        description=(
            "One approver's decisions (1 to 100; `action` approve or reject), each made on its "
            "own, in order, exactly as `POST /api/expenses/approve` or `/reject` would make it: "
            "one transaction each, so a refused decision undoes none of the others. Answers 200 "
            "with each decision's `status` and `body` as its own endpoint would have answered, "
            "in input order; 0 or more than 100 decisions are refused (400 "
            "`invalid_bulk_size`) and nothing is decided."
        ),
        responses=documented(*AUTH, InvalidInput, Forbidden, body=True),
    )
    def decide_in_bulk(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[BulkBody],
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
    ) -> BulkResponse:
        command = DecideInBulk(
            user_id=caller.actor(data.approver_id, "approver_id"),
            decisions=bulk_decisions(data),
            company_id=caller.company_id,
        )
        outcomes = expenses.decide_in_bulk(command)
        return bulk_response(command.decisions, outcomes, lambda exc: refusal(request, exc))

    @get(
        "/expenses/{expense_id:int}/history",
        sync_to_thread=True,
        summary="Expense history",
        description="Every change of the expense (submitted, approved, skipped...), oldest first.",
        responses=documented(*AUTH, NotFound),
    )
    def history(
        self,
        expense_id: ExpenseIdPath,
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
    ) -> HistoryResponse:
        viewer = _expense_viewer(expenses, caller, ExpenseId(expense_id))
        events = expenses.history(ExpenseId(expense_id), viewer)
        return history_response(expense_id, events)

    @get(
        "/expenses/{expense_id:int}/approvers/explain",
        sync_to_thread=True,
        summary="Why these approvers",
        description=(
            "For each step, who today's organisation routes it to and why every other person "
            "was passed over; `assigned_approver_id` is who the step was fixed to at submission."
        ),
        responses=documented(*AUTH, NotFound),
    )
    def explain(
        self,
        expense_id: ExpenseIdPath,
        expenses: NamedDependency[ExpenseService],
        caller: NamedDependency[Caller],
    ) -> ExplainResponse:
        viewer = _expense_viewer(expenses, caller, ExpenseId(expense_id))
        return explain_response(expenses.explain(ExpenseId(expense_id), viewer))


def _decided(body: T, decision: Decision) -> Response[T]:
    """A decision's answer; a replayed one says so."""
    return Response(body, headers={REPLAYED_HEADER: "true"} if decision.replayed else {})


def _listing_viewer(
    expenses: ExpenseService, caller: Caller, company_id: int | None, user_id: int | None
) -> Viewer:
    """Who lists: the token's holder (in their company, which `company_id` may only repeat),
    or in demo mode the company the query names, read whole."""
    viewer = caller.viewer
    if viewer is not None:
        if company_id is not None and company_id != viewer.company_id:
            raise UnknownCompany(company_id)
        return viewer
    if company_id is not None:
        return Viewer.whole_company(CompanyId(company_id))
    if user_id is not None:
        return Viewer.whole_company(expenses.company_of(UserId(user_id)))
    raise InvalidInput("name the company: give company_id or user_id (AUTH_MODE=demo)")


def _expense_viewer(expenses: ExpenseService, caller: Caller, expense_id: ExpenseId) -> Viewer:
    viewer = caller.viewer
    if viewer is not None:
        return viewer
    # Demo mode reads any company's expense, as the seed's status page does.
    return Viewer.whole_company(expenses.status(expense_id).company_id)


class HealthController(Controller):
    """Is the process up, and can it reach its database."""

    tags = ["health"]  # noqa: RUF012 -- Litestar reads this class attribute

    @get("/", sync_to_thread=False, summary="Service health (the seed's check)")
    def root(self, about: NamedDependency[Healthy]) -> Healthy:
        return about

    @get("/health/live", sync_to_thread=False, summary="Liveness: the process answers")
    def live(self) -> Probe:
        return Probe(status="alive")

    @get(
        "/health/ready",
        sync_to_thread=True,
        summary="Readiness: the database answers",
        responses=documented(Unavailable),
    )
    def ready(self, database: NamedDependency[Database]) -> Probe:
        database.ping()
        return Probe(status="ready")
