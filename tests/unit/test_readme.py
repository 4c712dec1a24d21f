"""The README's library example runs exactly as written and prints what its comments say."""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def library_example() -> str:
    """The first python block under the "## Library use" heading."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Library use\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "no python block under '## Library use'"
    return found.group(1)


def promised_output(code: str) -> list[str]:
    """The comment lines right after each print() call: what the example says it prints."""
    lines = code.splitlines()
    prints = sorted(
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "print"
    )
    promised: list[str] = []
    for _, end in prints:
        for line in lines[end:]:
            if not line.lstrip().startswith("# "):
                break
            promised.append(line.lstrip().removeprefix("# "))
    return promised


def test_the_library_example_prints_what_it_promises() -> None:
    code = library_example()
    promised = promised_output(code)
    assert len(promised) >= 2
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})  # noqa: S102 -- running the documented example is the point
    assert printed.getvalue().splitlines() == promised


def test_promised_output_is_read_from_the_comments_after_each_print() -> None:
    code = (
        "x = 1  # not output\n# nor this\nif x:\n    print(x)\n    # 1\n"
        'print(\n    "a"\n)\n# a\n# b\ny = 2\n'
    )
    assert promised_output(code) == ["1", "a", "b"]


def test_the_readme_fits_on_a_page_and_links_only_to_docs_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text) <= 12_000, "the rest belongs in docs/"
    for target in re.findall(r"\]\(((?:docs/)[^)#]+)", text):
        assert (README.parent / target).is_file(), target
