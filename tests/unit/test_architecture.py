"""Arrows point inward, layer by layer: each rule names a layer and what it may never import.

Imports are read from the source with `ast`, wherever they stand (inside functions and
`if TYPE_CHECKING:` blocks too), relative ones resolved against the importing module; only
direct imports count, so a rule speaks of the layer's own code, not of what its imports import.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
SQL_LIBRARIES = ("sqlalchemy", "psycopg", "alembic")


def within(*prefixes: str) -> Callable[[str], bool]:
    """Whether a dotted name is one of `prefixes` or inside one of them."""
    return lambda name: any(name == p or name.startswith(f"{p}.") for p in prefixes)


def beyond_stdlib_and(*prefixes: str) -> Callable[[str], bool]:
    """Whether a dotted name is neither standard library nor inside one of `prefixes`."""
    allowed = within(*prefixes)
    return lambda name: name.split(".")[0] not in sys.stdlib_module_names and not allowed(name)


@attrs.frozen
class Rule:
    """The modules of `layer` (but those `exempt`) never import a name that `forbids`."""

    says: str
    layer: tuple[str, ...]
    forbids: Callable[[str], bool]
    exempt: frozenset[str] = frozenset()

    def governs(self, module: str) -> bool:
        return within(*self.layer)(module) and module not in self.exempt


CORE = Rule(
    "the core imports only the standard library, attrs and itself",
    layer=("expense_core",),
    forbids=beyond_stdlib_and("attrs", "expense_core"),
)
ADAPTERS = Rule(
    "adapters never import entrypoints", layer=("adapters",), forbids=within("entrypoints")
)
HTTP = Rule(
    "HTTP code never touches the SQL adapter or a database library",
    layer=("entrypoints.http", "entrypoints.web"),
    forbids=within("adapters.sql", *SQL_LIBRARIES),
)
WIRING = Rule(
    "only the container wires a database library into the entrypoints",
    layer=("entrypoints",),
    forbids=within(*SQL_LIBRARIES),
    exempt=frozenset({"entrypoints.container"}),
)
LOAD_TESTS = Rule(
    "load tests speak HTTP only",
    layer=("loadtest",),
    forbids=within("expense_core", "adapters", "entrypoints"),
    # loadtest/bench_memory.py measures the library itself, in process and without a server
    # (`make bench-memory`): calling the core and the memory adapter is its purpose;
    # loadtest/observability_cost.py builds apps in process to tell their figures apart; and
    # loadtest/worker_cost.py, which measures the notification worker with no server, writes
    # its subscriptions into the database with secrets made as the core makes them.
    exempt=frozenset(
        {"loadtest.bench_memory", "loadtest.observability_cost", "loadtest.worker_cost"}
    ),
)
SHIPPED = Rule(
    "what is installed never imports what is not",
    layer=("expense_core", "adapters", "entrypoints"),
    forbids=within("tests", "loadtest"),
)
RULES = (CORE, ADAPTERS, HTTP, WIRING, LOAD_TESTS, SHIPPED)


def imported(module: str, source: str, *, package: bool = False) -> list[str]:
    """The absolute dotted names a module's source imports, in `ast.walk` order.

    `from a import b` names `a.b` (b may be a module: `from adapters import sql` is
    `adapters.sql`); a relative import is resolved against `module`, a package when `package`.
    """
    anchor = module.split(".") if package else module.split(".")[:-1]
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > len(anchor):
                raise ValueError(f"{module}: a relative import climbs above its top package")
            parts = anchor[: len(anchor) - node.level + 1] if node.level else []
            base = ".".join([*parts, *([node.module] if node.module else [])])
            names += [base if a.name == "*" else f"{base}.{a.name}" for a in node.names]
    return names


def violations(rule: Rule, module: str, source: str, *, package: bool = False) -> list[str]:
    """What the module imports against the rule (nothing when the rule does not govern it)."""
    if not rule.governs(module):
        return []
    return [name for name in imported(module, source, package=package) if rule.forbids(name)]


def project_modules() -> Iterator[tuple[str, Path]]:
    """Every module of the project's layers, by dotted name."""
    for top in ("expense_core", "adapters", "entrypoints", "loadtest"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.says)
def test_the_layer_keeps_the_rule(rule: Rule) -> None:
    offenders = {
        module: sorted(set(found))
        for module, path in project_modules()
        if (
            found := violations(
                rule, module, path.read_text(encoding="utf-8"), package=path.name == "__init__.py"
            )
        )
    }
    assert offenders == {}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.says)
def test_every_rule_governs_modules_that_exist(rule: Rule) -> None:
    modules = {module for module, _ in project_modules()}
    assert any(rule.governs(module) for module in modules)
    assert rule.exempt <= modules, "an exemption names a module that is gone"


# One forbidden import per rule, in a module the rule governs: each rule can fail.
CAUGHT = [
    ("expense_core.model", "import sqlalchemy.orm", ["sqlalchemy.orm"]),
    ("expense_core.services", "from litestar import Litestar", ["litestar.Litestar"]),
    ("adapters.sql.org", "from entrypoints import settings", ["entrypoints.settings"]),
    ("adapters.memory.store", "import entrypoints.container as c", ["entrypoints.container"]),
    ("entrypoints.http.app", "from adapters import sql", ["adapters.sql"]),
    ("entrypoints.http.app", "from adapters.sql.link import Link", ["adapters.sql.link.Link"]),
    ("entrypoints.web.pages", "import psycopg", ["psycopg"]),
    ("entrypoints.synthetic", "from sqlalchemy.engine import Engine", ["sqlalchemy.engine.Engine"]),
    ("entrypoints.cli", "from alembic import command", ["alembic.command"]),
    ("loadtest.locustfile", "from expense_core import demo", ["expense_core.demo"]),
    ("loadtest.bench", "from entrypoints import cli", ["entrypoints.cli"]),
    ("adapters.sql.database", "from tests import pg", ["tests.pg"]),
]


@pytest.mark.parametrize(("module", "source", "expected"), CAUGHT)
def test_a_forbidden_import_is_caught(module: str, source: str, expected: list[str]) -> None:
    source = f"def later():\n    {source}\n"  # deferred imports count as much as the others
    caught = {name for rule in RULES for name in violations(rule, module, source)}
    assert caught == set(expected)


def test_each_rule_alone_catches_one_of_them() -> None:
    catching = [[rule for rule in RULES if violations(rule, m, source)] for m, source, _ in CAUGHT]
    assert {rules[0] for rules in catching if len(rules) == 1} == set(RULES)


def test_an_exemption_covers_its_module_alone() -> None:
    sql = "import sqlalchemy\nfrom expense_core import ExpenseService\n"
    found = {
        module: sorted({name for rule in RULES for name in violations(rule, module, sql)})
        for module in ("entrypoints.container", "entrypoints.settings", "loadtest.bench_memory")
    }
    assert found == {
        "entrypoints.container": [],
        "entrypoints.settings": ["sqlalchemy"],
        "loadtest.bench_memory": [],
    }
    assert violations(LOAD_TESTS, "loadtest.bench", sql) == ["expense_core.ExpenseService"]


def test_imports_are_read_wherever_they_stand_and_resolved() -> None:
    source = """
from __future__ import annotations
import decimal, attr
from . import link
from .tables import users
from .. import memory
from ..memory.store import *

if TYPE_CHECKING:
    import psycopg

class Later:
    def method(self):
        from entrypoints import container
"""
    assert imported("adapters.sql.org", source) == [
        "__future__.annotations",
        "decimal",
        "attr",
        "adapters.sql.link",
        "adapters.sql.tables.users",
        "adapters.memory",
        "adapters.memory.store",
        "psycopg",
        "entrypoints.container",
    ]
    assert imported("adapters.sql", "from . import uow", package=True) == ["adapters.sql.uow"]
    with pytest.raises(ValueError, match="climbs above"):
        imported("adapters.clock", "from .. import entrypoints")


def test_the_core_rule_allows_stdlib_attrs_and_itself_only() -> None:
    source = "from __future__ import annotations\nimport attrs, decimal\nfrom . import model\n"
    assert violations(CORE, "expense_core.workflow", source) == []
    assert violations(CORE, "expense_core.workflow", "import attr\nimport msgspec\n") == [
        "attr",
        "msgspec",
    ]
