"""The pages: each handler reads its form or query, calls the same use cases as the API and
renders a template; a POST that succeeds redirects (303), so reloading never repeats it.

Handlers let errors go to `errors.py`, which renders the error page, except where the refusal
is the answer the form shows: next to the field it concerns, with what was typed kept.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from entrypoints.http.errors import status_of
from entrypoints.http.schemas import MAX_ID, NO_NUL
from entrypoints.settings import AuthMode
from entrypoints.web.session import Session
from entrypoints.web.site import (
    HOME,
    MY_EXPENSES,
    Site,
    Viewer,
    is_htmx,
    policy_choices,
    render,
    waiting,
    waiting_count,
)
from entrypoints.web.views import (
    FORM,
    FieldRefused,
    allowed_actions,
    in_words,
    names_in,
    people_in,
    submission_field,
    timeline,
)
from expense_core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InactiveUser,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from expense_core.model import CompanyId, ExpenseId, ExpenseStatus, Money, PolicyId, UserId
from expense_core.services import (
    MAX_PAGE,
    AccessService,
    ApproveStep,
    BulkAction,
    BulkDecision,
    DecideInBulk,
    ExpenseService,
    OrgService,
    RejectExpense,
    SendBack,
    SubmitExpense,
    WithdrawExpense,
    token_id_of,
)
from expense_core.tokens import TokenId

PAGE_SIZE: Final = 20
FormText = Annotated[str, msgspec.Meta(pattern=NO_NUL)]
ExpenseIdPath = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Cursor = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, required=False)]
Word = Annotated[str, QueryParameter(required=False, max_length=20)]
# Refusals a form shows beside its fields; NotFound and Unavailable get their own pages.
REFUSALS: Final = (InvalidInput, Forbidden, Conflict)
DONE: Final = {
    "approve": "approved",
    "reject": "rejected",
    "withdraw": "withdrew",
    "send_back": "sent back",
    "resubmit": "resubmitted",
}


class SignInForm(msgspec.Struct):
    person: FormText = ""
    token: FormText = ""
    company: FormText = "1"


class ExpenseForm(msgspec.Struct):
    policy: FormText = ""
    category: FormText = ""
    amount: FormText = ""
    description: FormText = ""
    idempotency_key: FormText = ""


class DecisionForm(msgspec.Struct):
    decision: FormText = ""
    comment: FormText = ""
    back: FormText = "expense"  # "expense" or "inbox": the page the person goes on from


class SelectedForm(msgspec.Struct):
    expense_id: list[Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]] | int | None = None
    comment: FormText = ""


SignInBody = Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
ExpenseBody = Annotated[ExpenseForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
DecisionBody = Annotated[DecisionForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
SelectedBody = Annotated[SelectedForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


# --- signing in and out --------------------------------------------------------------------------


class SignInPages(Controller):
    """Sign in (a person in demo mode, a token otherwise) and sign out."""

    path = "/"

    @get("/", sync_to_thread=True)
    def sign_in_page(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        org: NamedDependency[OrgService],
        company: Annotated[int, QueryParameter(ge=1, le=MAX_ID)] = 1,
        cursor: Cursor = None,
    ) -> Response[Any]:
        session = site.session_of(request)
        if session is not None and session.user_id is not None:
            return Redirect(MY_EXPENSES, status_code=303)
        return render_sign_in(request, site, org, session, company=company, cursor=cursor)

    @post("/sign-in", sync_to_thread=True, status_code=303)
    def sign_in(
        self,
        request: Request[Any, Any, Any],
        data: SignInBody,
        site: NamedDependency[Site],
        org: NamedDependency[OrgService],
        access: NamedDependency[AccessService],
    ) -> Response[Any]:
        token_id: TokenId | None = None
        try:
            if site.auth_mode is AuthMode.TOKEN:
                token = data.token.strip()
                member = access.authenticate(token)
                token_id = token_id_of(token)
            elif site.auth_mode is AuthMode.OIDC:
                # People sign in at their identity provider (`entrypoints.web.oidc`); a token
                # or a name typed here signs in nobody.
                raise FieldRefused("oidc", "Sign in with your identity provider's button.")
            else:
                member = org.user(_chosen("person", data.person, "Choose a person from the list."))
                if not member.user.active:
                    raise InactiveUser(member.id)
        except (Unauthenticated, NotFound, InactiveUser, FieldRefused) as refused:
            field = {AuthMode.DEMO: "person", AuthMode.OIDC: "oidc"}.get(site.auth_mode, "token")
            company = data.company if data.company.isdigit() else "1"
            return render_sign_in(
                request,
                site,
                org,
                site.session_of(request),
                company=min(int(company), MAX_ID) or 1,
                errors={field: in_words(refused)},
                status_code=status_of(refused),
            )
        # Signed in with a token: the session lasts while the token does (`site.signed_in`).
        session = Session.signed_in(member.id, site.clock.now(), token_id)
        return Redirect(MY_EXPENSES, status_code=303, cookies=[site.cookie(request, session)])

    @post("/sign-out", sync_to_thread=False, status_code=303)
    def sign_out(self, request: Request[Any, Any, Any], site: NamedDependency[Site]) -> Redirect:
        # A new anonymous session: the signed-in one, and every form it served, ends here.
        return Redirect(HOME, status_code=303, cookies=[site.cookie(request, Session.anonymous())])


def _chosen(field: str, raw: str, message: str) -> UserId:
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise FieldRefused(field, message)
    return UserId(int(text))


def render_sign_in(
    request: Request[Any, Any, Any],
    site: Site,
    org: OrgService,
    session: Session | None,
    *,
    company: int,
    cursor: int | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    """The sign-in page of a company: its people to pick in demo mode, its issuers in token
    mode, with `errors` by field. Signing in by OpenID Connect (`oidc.py`) answers with it too."""
    cookies = []
    if session is None:
        session = Session.anonymous()
        cookies.append(site.cookie(request, session))
    errors = dict(errors or {})
    context: dict[str, Any] = {
        "demo": site.auth_mode is AuthMode.DEMO,
        "company_id": company,
        "company": None,
        "people": (),
        "next_cursor": None,
        "issuers": site.issuers,
    }
    if site.auth_mode is AuthMode.DEMO:
        try:
            context["company"] = org.company(CompanyId(company))
            people = org.users(CompanyId(company), cursor=cursor, limit=MAX_PAGE)
        except NotFound:
            errors.setdefault("company", f"There is no company {company}.")
            status_code = max(status_code, 404)
        else:
            context["people"] = tuple(u for u in people.items if u.active)
            context["next_cursor"] = people.next_cursor
    return render(
        "sign_in.html",
        None,
        csrf=site.sessions.csrf_token(session),
        status_code=status_code,
        cookies=cookies,
        errors=errors,
        **context,
    )


# --- expenses ------------------------------------------------------------------------------------


class ExpensePages(Controller):
    """My expenses, a new expense, and the page of one expense with its decisions."""

    path = "/expenses"

    @get("/", sync_to_thread=True)
    def mine(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        status: Word = "",
        cursor: Cursor = None,
    ) -> Template:
        chosen = _status(status)
        page = expenses.list_expenses(
            viewer.reader, user_id=viewer.id, status=chosen, cursor=cursor, limit=PAGE_SIZE
        )
        context: dict[str, Any] = {
            "page": page,
            "status": chosen,
            "statuses": list(ExpenseStatus),
        }
        if is_htmx(request):
            return render("_expense_list.html", viewer, **context)
        return render(
            "my_expenses.html", viewer, waiting=waiting(expenses, viewer), here="mine", **context
        )

    @get("/new", sync_to_thread=True)
    def new(
        self,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
    ) -> Template:
        return _new_expense(viewer, expenses, org, ExpenseForm(idempotency_key=_new_key()))

    @post("/new", sync_to_thread=True, status_code=303)
    def submit(
        self,
        data: ExpenseBody,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
    ) -> Response[Any]:
        try:
            submitted = expenses.submit(_submission(data, viewer))
        except (*REFUSALS, NotFound) as refused:
            field = submission_field(refused)
            # A key is spent only by a stored expense; a refused form may keep its own.
            key = _new_key() if isinstance(refused, Conflict) else data.idempotency_key
            return _new_expense(
                viewer,
                expenses,
                org,
                msgspec.structs.replace(data, idempotency_key=key),
                errors={field: in_words(refused)},
                status_code=status_of(refused),
            )
        return Redirect(f"{MY_EXPENSES}/{submitted.expense.id}", status_code=303)

    @get("/{expense_id:int}", sync_to_thread=True)
    def expense(
        self,
        expense_id: ExpenseIdPath,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
        site: NamedDependency[Site],
        done: Word = "",
    ) -> Template:
        notice = f"You {DONE[done]} this expense." if done in DONE else None
        return _expense_page(viewer, expenses, org, site, ExpenseId(expense_id), notice=notice)

    @post("/{expense_id:int}/decide", sync_to_thread=True, status_code=303)
    def decide(
        self,
        request: Request[Any, Any, Any],
        expense_id: ExpenseIdPath,
        data: DecisionBody,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
        site: NamedDependency[Site],
    ) -> Response[Any]:
        expense = ExpenseId(expense_id)
        from_inbox = data.back == "inbox"
        try:
            _decide(expenses, viewer, expense, data)
        except REFUSALS as refused:
            words = in_words(refused)
            status_code = status_of(refused)
            if is_htmx(request):
                return render(
                    "_refusal.html",
                    viewer,
                    message=words,
                    status_code=status_code,
                    headers={"HX-Retarget": f"#refusal-{expense}", "HX-Reswap": "innerHTML"},
                )
            if from_inbox:
                return _inbox(
                    viewer,
                    expenses,
                    errors={expense: words},
                    typed={expense: data.comment},
                    status_code=status_code,
                )
            return _expense_page(
                viewer,
                expenses,
                org,
                site,
                expense,
                errors={data.decision: words},
                typed={data.decision: data.comment},
                status_code=status_code,
            )
        if is_htmx(request):
            return render(
                "_decided.html",
                viewer,
                expense_id=expense,
                done=DONE[data.decision],
                waiting=waiting(expenses, viewer),
                status_code=200,
            )
        if from_inbox:
            return Redirect(f"/app/inbox?done={data.decision}&expense={expense}", status_code=303)
        return Redirect(f"{MY_EXPENSES}/{expense}?done={data.decision}", status_code=303)


def _status(raw: str) -> ExpenseStatus | None:
    if not raw:
        return None
    try:
        return ExpenseStatus(raw)
    except ValueError:
        raise FieldRefused("status", f"There is no status {raw!r}.") from None


def _new_key() -> str:
    # The form's own idempotency key: sending it twice (a double click, a reload after a
    # lost answer) stores one expense.
    return secrets.token_urlsafe(16)


def _submission(data: ExpenseForm, viewer: Viewer) -> SubmitExpense:
    if not data.amount.strip():
        raise FieldRefused("amount", "Enter an amount, such as 4000.00.")
    policy = data.policy.strip()
    if policy and not (policy.isascii() and policy.isdigit() and int(policy) <= MAX_ID):
        raise FieldRefused("policy", "Choose a policy from the list.")
    return SubmitExpense(
        user_id=viewer.id,
        company_id=viewer.company_id,
        amount=Money.parse(data.amount.strip()),
        description=data.description if data.description.strip() else None,
        policy_id=PolicyId(int(policy)) if policy else None,
        category=data.category.strip() or None,
        idempotency_key=data.idempotency_key or None,
    )


def _new_expense(
    viewer: Viewer,
    expenses: ExpenseService,
    org: OrgService,
    typed: ExpenseForm,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return render(
        "new_expense.html",
        viewer,
        waiting=waiting(expenses, viewer),
        here="new",
        **policy_choices(org, viewer),
        typed=typed,
        errors=errors or {},
        form_error=(errors or {}).get(FORM),
        status_code=status_code,
    )


def _decide(
    expenses: ExpenseService, viewer: Viewer, expense: ExpenseId, data: DecisionForm
) -> None:
    comment = data.comment if data.comment.strip() else None
    if data.decision == "approve":
        expenses.approve(
            ApproveStep(
                expense_id=expense,
                user_id=viewer.id,
                comments=comment,
                company_id=viewer.company_id,
            )
        )
    elif data.decision == "reject":
        expenses.reject(
            RejectExpense(
                expense_id=expense,
                user_id=viewer.id,
                reason=comment,
                company_id=viewer.company_id,
            )
        )
    elif data.decision == "withdraw":
        expenses.withdraw(
            WithdrawExpense(expense_id=expense, user_id=viewer.id, company_id=viewer.company_id)
        )
    elif data.decision == "send_back":
        expenses.send_back(
            SendBack(
                expense_id=expense,
                user_id=viewer.id,
                reason=comment,
                company_id=viewer.company_id,
            )
        )
    else:
        raise FieldRefused("decision", "Choose Approve, Reject, Send back or Withdraw.")


def _expense_page(
    viewer: Viewer,
    expenses: ExpenseService,
    org: OrgService,
    site: Site,
    expense_id: ExpenseId,
    *,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    view = expenses.status(expense_id, viewer.reader)
    events = expenses.history(expense_id, viewer.reader)
    routing = expenses.explain(expense_id, viewer.reader)
    names = names_in(view, routing)
    # Whoever the history names beyond those (a step's earlier approver, an absent approver's
    # delegate, an admin who moved a step) in one more read, only when there is someone.
    names |= org.names(viewer.company_id, people_in(events) - names.keys())
    return render(
        "expense.html",
        viewer,
        waiting=waiting(expenses, viewer),
        view=view,
        moments=timeline(events, names),
        routing=routing,
        actions=allowed_actions(routing.expense, viewer.id, site.clock.now()),
        notice=notice,
        errors=errors or {},
        typed=typed or {},
        status_code=status_code,
    )


# --- the inbox -----------------------------------------------------------------------------------


class InboxPages(Controller):
    """The steps a person may decide now: one by one, or many approved at once."""

    path = "/inbox"

    @get("/", sync_to_thread=True)
    def inbox(
        self,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        cursor: Cursor = None,
        done: Word = "",
        expense: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, required=False)] = None,
    ) -> Template:
        notice = None
        if done in DONE and expense is not None:
            notice = f"You {DONE[done]} expense #{expense}."
        return _inbox(viewer, expenses, cursor=cursor, notice=notice)

    @post("/approve-selected", sync_to_thread=True, status_code=200)
    def approve_selected(
        self,
        data: SelectedBody,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
    ) -> Template:
        chosen = data.expense_id
        selected = [] if chosen is None else [chosen] if isinstance(chosen, int) else chosen
        if not selected:
            return _inbox(
                viewer, expenses, notice="Select at least one expense to approve.", status_code=400
            )
        comment = data.comment if data.comment.strip() else None
        chosen_once = [ExpenseId(e) for e in dict.fromkeys(selected)]
        outcomes = expenses.decide_in_bulk(
            DecideInBulk(
                user_id=viewer.id,
                decisions=tuple(
                    BulkDecision(expense_id=e, action=BulkAction.APPROVE, comment=comment)
                    for e in chosen_once
                ),
                company_id=viewer.company_id,
            )
        )
        results = [
            (expense_id, in_words(outcome) if isinstance(outcome, DomainError) else None)
            for expense_id, outcome in zip(chosen_once, outcomes, strict=True)
        ]
        return _inbox(viewer, expenses, results=results)


def _inbox(
    viewer: Viewer,
    expenses: ExpenseService,
    *,
    cursor: int | None = None,
    notice: str | None = None,
    results: list[tuple[ExpenseId, str | None]] | None = None,
    errors: dict[ExpenseId, str] | None = None,
    typed: dict[ExpenseId, str] | None = None,
    status_code: int = 200,
) -> Template:
    page = expenses.inbox(viewer.id, viewer.reader, cursor=cursor, limit=MAX_PAGE)
    count = (
        waiting_count(len(page.items), more=page.next_cursor is not None)
        if cursor is None
        else waiting(expenses, viewer)
    )
    return render(
        "inbox.html",
        viewer,
        waiting=count,
        here="inbox",
        page=page,
        notice=notice,
        results=results or [],
        errors=errors or {},
        typed=typed or {},
        status_code=status_code,
    )
