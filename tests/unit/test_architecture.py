"""Arrows point inward: `expense_core` imports only the standard library, attrs and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import expense_core

CORE = Path(expense_core.__file__).parent
ALLOWED = frozenset({"attrs", "expense_core"})


def foreign_imports(source: str) -> list[str]:
    """The top-level modules a module's source imports that are neither stdlib nor allowed."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # a relative import stays inside the package
        for name in names:
            top = name.split(".")[0]
            if top not in ALLOWED and top not in sys.stdlib_module_names:
                found.append(name)
    return found


def test_the_core_has_modules_to_check() -> None:
    assert {p.name for p in CORE.rglob("*.py")} >= {"model.py", "expenses.py", "workflow.py"}


def test_the_core_imports_nothing_but_stdlib_attrs_and_itself() -> None:
    offenders = {
        str(path.relative_to(CORE)): foreign
        for path in sorted(CORE.rglob("*.py"))
        if (foreign := foreign_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_check_catches_infrastructure_wherever_it_is_imported() -> None:
    source = """
import sqlalchemy.orm
from litestar import Litestar
from adapters.memory import MemoryStore
import decimal, attr, psycopg

def later():
    from entrypoints import container
"""
    assert foreign_imports(source) == [
        "sqlalchemy.orm",
        "litestar",
        "adapters.memory",
        "attr",
        "psycopg",
        "entrypoints",
    ]
    assert foreign_imports("from __future__ import annotations\nimport attrs\n") == []
