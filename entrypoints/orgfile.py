"""Organisation files: YAML or JSON in, the core's `OrgPlan` out, and back.

The format (see `examples/org.yaml`): `company` (a name), `fallback_approver` (an email: who
takes the steps nobody else may), `teams` (name, company_wide, levels of number and name),
`users` (email, name, team by name, level by number, manager by email, role, active) and
`policies` (name, category, min_amount and max_amount as decimal strings, description, active,
and steps in order: required_level, team_scope, is_required, description,
escalate_after_hours). A step's `team_scope` names its team by name (`team:Finance`), so a file
moves between databases whatever ids they give. Amounts are read exactly: a YAML or JSON number
with a fraction is refused in favour of a quoted decimal string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from expense_core.errors import InvalidAmount, InvalidOrgFile
from expense_core.model import Money, Role
from expense_core.services import (
    LevelPlan,
    OrgPlan,
    PersonPlan,
    PolicyPlan,
    StepPlan,
    TeamPlan,
)


def load(path: Path) -> OrgPlan:
    """Read an organisation file (`.json`, else YAML).

    Raises:
        InvalidOrgFile: unreadable, not YAML/JSON, or not of the format.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidOrgFile(f"cannot read {path}: {exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text, parse_float=Decimal)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidOrgFile(f"{path} is not valid {_kind(path)}: {_first_line(exc)}") from None
    return plan_from(data)


def _kind(path: Path) -> str:
    return "JSON" if path.suffix.lower() == ".json" else "YAML"


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def dump(plan: OrgPlan, *, as_json: bool = False) -> str:
    """Write a plan in the file format (YAML unless asked for JSON)."""
    data = data_from(plan)
    if as_json:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


# --- reading ---------------------------------------------------------------------------------


def plan_from(data: Any) -> OrgPlan:
    """The plan a decoded file describes.

    Raises:
        InvalidOrgFile: naming the entry and the field that is missing or of the wrong type.
    """
    top = _mapping(data, "the file", {"company", "fallback_approver", "teams", "users", "policies"})
    return OrgPlan(
        company=_text(top, "company", "the file"),
        fallback_approver=_optional_text(top, "fallback_approver", "the file"),
        teams=tuple(_team(t, i) for i, t in enumerate(_list(top, "teams", "the file"), 1)),
        users=tuple(_person(u, i) for i, u in enumerate(_list(top, "users", "the file"), 1)),
        policies=tuple(_policy(p, i) for i, p in enumerate(_list(top, "policies", "the file"), 1)),
    )


def _team(data: Any, index: int) -> TeamPlan:
    where = f"team #{index}"
    team = _mapping(data, where, {"name", "company_wide", "levels"})
    name = _text(team, "name", where)
    where = f"team '{name}'"
    levels = []
    for i, raw in enumerate(_list(team, "levels", where), 1):
        level = _mapping(raw, f"{where}, level #{i}", {"number", "name"})
        levels.append(
            LevelPlan(
                number=_int(level, "number", f"{where}, level #{i}"),
                name=_text(level, "name", f"{where}, level #{i}"),
            )
        )
    return TeamPlan(
        name=name,
        company_wide=_bool(team, "company_wide", where, default=False),
        levels=tuple(levels),
    )


def _person(data: Any, index: int) -> PersonPlan:
    fields = {"email", "name", "team", "level", "manager", "role", "active"}
    person = _mapping(data, f"user #{index}", fields)
    email = _text(person, "email", f"user #{index}")
    where = f"user '{email}'"
    role = _text(person, "role", where, default=str(Role.EMPLOYEE))
    if role not in {r.value for r in Role}:
        raise InvalidOrgFile(f"{where}: role must be one of {', '.join(r.value for r in Role)}")
    return PersonPlan(
        email=email,
        name=_text(person, "name", where),
        team=_text(person, "team", where),
        level=_int(person, "level", where),
        manager=_optional_text(person, "manager", where),
        role=Role(role),
        active=_bool(person, "active", where, default=True),
    )


def _policy(data: Any, index: int) -> PolicyPlan:
    fields = {"name", "category", "description", "min_amount", "max_amount", "active", "steps"}
    policy = _mapping(data, f"policy #{index}", fields)
    name = _text(policy, "name", f"policy #{index}")
    where = f"policy '{name}'"
    steps = []
    for i, raw in enumerate(_list(policy, "steps", where), 1):
        step_where = f"{where}, step {i}"
        step = _mapping(
            raw,
            step_where,
            {"required_level", "team_scope", "is_required", "description", "escalate_after_hours"},
        )
        steps.append(
            StepPlan(
                required_level=_int(step, "required_level", step_where),
                team_scope=_text(step, "team_scope", step_where, default="submitter"),
                is_required=_bool(step, "is_required", step_where, default=True),
                description=_optional_text(step, "description", step_where),
                escalate_after_hours=_optional_int(step, "escalate_after_hours", step_where),
            )
        )
    return PolicyPlan(
        name=name,
        category=_text(policy, "category", where),
        description=_optional_text(policy, "description", where),
        min_amount=_money(policy, "min_amount", where),
        max_amount=_money(policy, "max_amount", where),
        active=_bool(policy, "active", where, default=True),
        steps=tuple(steps),
    )


def _mapping(data: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise InvalidOrgFile(f"{where} must be a mapping")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise InvalidOrgFile(f"{where}: unknown field(s) {', '.join(unknown)}")
    return data


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidOrgFile(f"{where}: {key} must be a list")
    return value


def _text(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise InvalidOrgFile(f"{where}: {key} must be a string")
    return value


def _optional_text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidOrgFile(f"{where}: {key} must be a string")
    return value


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOrgFile(f"{where}: {key} must be an integer")
    return value


def _optional_int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    if data.get(key) is None:
        return None
    return _int(data, key, where)


def _bool(data: Mapping[str, Any], key: str, where: str, *, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise InvalidOrgFile(f"{where}: {key} must be true or false")
    return value


def _money(data: Mapping[str, Any], key: str, where: str) -> Money:
    value = data.get(key)
    if isinstance(value, float):
        raise InvalidOrgFile(f'{where}: write {key} as a quoted decimal string, e.g. "1999.99"')
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidOrgFile(f"{where}: {key} must be a decimal string")
    try:
        return Money.parse(value)
    except InvalidAmount as exc:
        raise InvalidOrgFile(f"{where}: {key}: {exc.message}") from None


# --- writing ---------------------------------------------------------------------------------


def data_from(plan: OrgPlan) -> dict[str, Any]:
    """The plan as plain data in the file format; amounts as decimal strings. What is unset
    (no fallback approver, a step that never escalates) is left out, as older files have it."""
    data: dict[str, Any] = {"company": plan.company}
    if plan.fallback_approver is not None:
        data["fallback_approver"] = plan.fallback_approver
    return data | {
        "teams": [
            {
                "name": t.name,
                "company_wide": t.company_wide,
                "levels": [{"number": lv.number, "name": lv.name} for lv in t.levels],
            }
            for t in plan.teams
        ],
        "users": [
            {
                "email": u.email,
                "name": u.name,
                "team": u.team,
                "level": u.level,
                "manager": u.manager,
                "role": str(u.role),
                "active": u.active,
            }
            for u in plan.users
        ],
        "policies": [
            {
                "name": p.name,
                "category": p.category,
                "description": p.description,
                "min_amount": str(p.min_amount),
                "max_amount": str(p.max_amount),
                "active": p.active,
                "steps": [_step_data(s) for s in p.steps],
            }
            for p in plan.policies
        ],
    }


def _step_data(step: StepPlan) -> dict[str, Any]:
    data: dict[str, Any] = {
        "required_level": step.required_level,
        "team_scope": step.team_scope,
        "is_required": step.is_required,
        "description": step.description,
    }
    if step.escalate_after_hours is not None:
        data["escalate_after_hours"] = step.escalate_after_hours
    return data
