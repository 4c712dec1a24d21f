"""Approver resolution: who approves each step of a policy for a given submitter, and why.

For each step, candidates are active members of the submitter's company in the step's scope,
at the required level or more senior, never the submitter, never an auditor (auditors change
nothing, so they approve nothing), never someone already chosen for an earlier step (four eyes)
and, in the submitter and company-wide scopes, strictly more senior than the submitter. The
first candidate in the submitter's reporting chain wins; otherwise the nearest level wins (the
largest level number still allowed), ties to the lowest user id. A step nobody is eligible for
goes to the company's fallback approver, unless they are the submitter, an auditor or already
approve another step of the expense.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from expense_core.errors import NoApproverForStep
from expense_core.model import ApprovalStep, Member, Role, ScopeKind, UserId


@attrs.frozen
class ApproverPool:
    """The people resolution may pick from, as a store provides them.

    `chain` is the submitter's reporting chain, nearest manager first. `candidates` must hold, for
    every step, each chain member and at least as many of the nearest eligible members as there
    are steps (so four eyes can always move on to the next one); more is harmless. `fallback` is
    the company's fallback approver, if it names one, whatever their team or level.
    """

    chain: tuple[Member, ...] = ()
    candidates: tuple[Member, ...] = ()
    fallback: Member | None = None

    def everyone(self) -> tuple[Member, ...]:
        seen: dict[UserId, Member] = {m.id: m for m in self.chain}
        for member in self.candidates:
            seen.setdefault(member.id, member)
        return tuple(seen.values())


@attrs.frozen
class RoutedStep:
    """A step and the person it was routed to, with the rule that chose them."""

    step: ApprovalStep
    approver: Member
    rule: str


@attrs.frozen
class Verdict:
    member: Member
    reason: str


@attrs.frozen
class StepExplanation:
    """Why a step went to whom: the winner, the rule, and why every other candidate lost."""

    step: ApprovalStep
    chosen: Member | None
    rule: str
    considered: tuple[Verdict, ...]


CHAIN_RULE = "first eligible person in the submitter's reporting chain"
NEAREST_RULE = "nearest eligible level (ties to the lowest user id)"
NOBODY_RULE = "no eligible candidate"
FALLBACK_RULE = "fallback: nobody else is eligible, so the company's fallback approver"
# Python 3.11's `EnumType.__getattr__` makes each `ScopeKind.TEAM` a slow lookup (0.43 µs against
# 0.05 µs for a global, on 3.11.7), and resolution asks `may_approve` of everyone it considers.
_SUBMITTER, _TEAM, _AUDITOR = ScopeKind.SUBMITTER, ScopeKind.TEAM, Role.AUDITOR
AUDITOR_REASON = "is an auditor (auditors approve nothing)"


def ineligibility(
    step: ApprovalStep, submitter: Member, member: Member, taken: Mapping[UserId, int]
) -> str | None:
    """Say why a member cannot approve a step for this submitter, or None when they can."""
    if member.id == submitter.id:
        return "is the submitter"
    user = member.user
    if not user.active:
        return "is inactive"
    if user.role is _AUDITOR:
        return AUDITOR_REASON
    if user.company_id != submitter.user.company_id:
        return "belongs to another company"
    scope = step.team_scope
    if scope.kind is ScopeKind.SUBMITTER and user.team_id != submitter.user.team_id:
        return "is outside the submitter's team"
    if scope.kind is ScopeKind.TEAM and user.team_id != scope.team_id:
        return f"is outside team {scope.team_id}"
    if member.level_number > step.required_level:
        return f"level {member.level_number} is junior to the required level {step.required_level}"
    if scope.demands_seniority and member.level_number >= submitter.level_number:
        return (
            f"level {member.level_number} is not senior to the submitter's "
            f"level {submitter.level_number}"
        )
    if member.id in taken:
        return f"already approves step {taken[member.id]} (four eyes)"
    return None


def may_approve(
    step: ApprovalStep, submitter: Member, member: Member, taken: Mapping[UserId, int]
) -> bool:
    """Whether a member can approve a step for this submitter: `ineligibility` finds nothing.

    The same rules in the same order, without building a reason: resolution asks this of
    every person it considers.
    """
    user = member.user
    asking = submitter.user
    if (
        user.id == asking.id
        or not user.active
        or user.role is _AUDITOR
        or user.company_id != asking.company_id
    ):
        return False
    scope = step.team_scope
    kind = scope.kind
    if kind is _SUBMITTER:
        if user.team_id != asking.team_id:
            return False
    elif kind is _TEAM and user.team_id != scope.team_id:
        return False
    level = member.level.level_number
    if level > step.required_level:
        return False
    if kind is not _TEAM and level >= submitter.level.level_number:
        return False
    return user.id not in taken


def fallback_ineligibility(
    submitter: Member, fallback: Member, taken: Mapping[UserId, int]
) -> str | None:
    """Say why the company's fallback approver cannot take a step of this submitter's expense,
    or None when they can. The fallback stands above team scope and level: only four eyes and
    who they are count."""
    if fallback.id == submitter.id:
        return "is the submitter"
    if not fallback.user.active:
        return "is inactive"
    if fallback.user.role is _AUDITOR:
        return AUDITOR_REASON
    if fallback.user.company_id != submitter.user.company_id:
        return "belongs to another company"
    if fallback.id in taken:
        return f"already approves step {taken[fallback.id]} (four eyes)"
    return None


def _fallback(
    submitter: Member, pool: ApproverPool, taken: Mapping[UserId, int]
) -> tuple[Member | None, str]:
    fallback = pool.fallback
    if fallback is None or fallback_ineligibility(submitter, fallback, taken) is not None:
        return None, NOBODY_RULE
    return fallback, FALLBACK_RULE


def _nearest_key(member: Member) -> tuple[int, int]:
    return (-member.level_number, member.id)


def _choose(
    step: ApprovalStep,
    submitter: Member,
    pool: ApproverPool,
    people: Iterable[Member] | None,
    taken: Mapping[UserId, int],
) -> tuple[Member | None, str]:
    for manager in pool.chain:
        if may_approve(step, submitter, manager, taken):
            return manager, CHAIN_RULE
    # Nearest level wins, ties to the lowest user id: the smallest (-level, id).
    best: Member | None = None
    best_level = best_id = 0
    for m in pool.everyone() if people is None else people:
        if may_approve(step, submitter, m, taken):
            level, user_id = -m.level.level_number, m.user.id
            if best is None or level < best_level or (level == best_level and user_id < best_id):
                best, best_level, best_id = m, level, user_id
    if best is None:
        return None, NOBODY_RULE
    return best, NEAREST_RULE


def resolve_approvers(
    submitter: Member, steps: Sequence[ApprovalStep], pool: ApproverPool
) -> tuple[RoutedStep, ...]:
    """Route every step of a policy to a distinct, eligible approver; a step nobody is eligible
    for goes to the company's fallback approver when they may take it.

    Raises:
        NoApproverForStep: some step has no eligible candidate and the fallback approver may
            not take it (there is none, they submitted it, or they approve another step);
            names the first such step.
    """
    people: tuple[Member, ...] | None = None
    taken: dict[UserId, int] = {}
    routed: list[RoutedStep] = []
    for step in _in_order(steps):
        chosen, rule = _choose(step, submitter, pool, people, taken)
        if chosen is None:
            chosen, rule = _fallback(submitter, pool, taken)
        if chosen is None:
            raise NoApproverForStep(step.step_order, step.required_level, str(step.team_scope))
        if rule is NEAREST_RULE and people is None:
            people = pool.everyone()
        taken[chosen.user.id] = step.step_order
        routed.append(RoutedStep(step, chosen, rule))
    return tuple(routed)


def _in_order(steps: Sequence[ApprovalStep]) -> Sequence[ApprovalStep]:
    # Stored policies keep their steps in order; sort only when they are not.
    previous = None
    for step in steps:
        if previous is not None and step.step_order < previous:
            return sorted(steps, key=lambda s: s.step_order)
        previous = step.step_order
    return steps


def resolve_step(
    submitter: Member, step: ApprovalStep, pool: ApproverPool, taken: Mapping[UserId, int]
) -> RoutedStep:
    """Route one step again, four eyes against the approvers of the expense's other steps; the
    fallback approver takes it when nobody else is eligible and they may.

    Raises:
        NoApproverForStep: nobody eligible is left for the step, the fallback approver included.
    """
    chosen, rule = _choose(step, submitter, pool, None, taken)
    if chosen is None:
        chosen, rule = _fallback(submitter, pool, taken)
    if chosen is None:
        raise NoApproverForStep(step.step_order, step.required_level, str(step.team_scope))
    return RoutedStep(step, chosen, rule)


def explain(
    submitter: Member, steps: Sequence[ApprovalStep], pool: ApproverPool
) -> tuple[StepExplanation, ...]:
    """Explain, step by step, who resolution chooses and why every other candidate lost.

    Unlike `resolve_approvers` it never raises: a step nobody can take says so. The company's
    fallback approver is judged too, as a fallback when no candidate is eligible.
    """
    people = sorted(pool.everyone(), key=_nearest_key)
    chain_rank = {m.id: i for i, m in enumerate(pool.chain)}
    fallback = pool.fallback
    taken: dict[UserId, int] = {}
    explained: list[StepExplanation] = []
    for step in sorted(steps, key=lambda s: s.step_order):
        chosen, rule = _choose(step, submitter, pool, people, taken)
        if chosen is None:
            chosen, rule = _fallback(submitter, pool, taken)
        verdicts = []
        for member in people:
            why = ineligibility(step, submitter, member, taken)
            if chosen is not None and member.id == chosen.id:
                why = f"chosen: {rule}"
            elif why is None and chosen is not None:
                why = _why_lost(member, chosen, rule, chain_rank)
            verdicts.append(Verdict(member, why or "eligible"))
        if fallback is not None and all(m.id != fallback.id for m in people):
            why = _fallback_verdict(submitter, fallback, chosen, rule, taken)
            verdicts.append(Verdict(fallback, why))
        if chosen is not None:
            taken[chosen.id] = step.step_order
        explained.append(StepExplanation(step, chosen, rule, tuple(verdicts)))
    return tuple(explained)


def _fallback_verdict(
    submitter: Member,
    fallback: Member,
    chosen: Member | None,
    rule: str,
    taken: Mapping[UserId, int],
) -> str:
    if chosen is not None and chosen.id == fallback.id:
        return f"chosen: {rule}"
    if chosen is not None:
        return f"fallback approver, not needed: {chosen.user.name} is eligible"
    why = fallback_ineligibility(submitter, fallback, taken)
    return f"fallback approver, but {why}"


def _why_lost(member: Member, chosen: Member, rule: str, chain_rank: Mapping[UserId, int]) -> str:
    if rule == CHAIN_RULE:
        if member.id in chain_rank:
            return f"eligible, but higher in the reporting chain than {chosen.user.name}"
        return f"eligible, but not in the reporting chain, where {chosen.user.name} is"
    if member.level_number < chosen.level_number:
        return (
            f"eligible, but level {member.level_number} is farther than "
            f"{chosen.user.name}'s level {chosen.level_number}"
        )
    return f"eligible, but {chosen.user.name} has the same level and a lower user id"
