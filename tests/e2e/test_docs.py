"""The docs' walk-throughs run as written against the real server, and do what they say.

Each command of a walk-through's shell block runs in bash with `curl`, as a reader would paste
it, against a server started like `make run` (migrated, demo seeded); only the address
`http://127.0.0.1:4000` is swapped for the test server's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import StartServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_ADDRESS = "http://127.0.0.1:4000"
# "# company 2", "# team 2", "# level 8", "# user 11": the id a creation is said to answer.
PROMISED_ID = re.compile(r"#\s+(company|team|level|user)\s+(\d+)\s*$")


def shell_block(path: Path, block: int = 0) -> list[str]:
    """The lines of a ```bash block of a document: the first, or the `block`th from 0."""
    found = re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    assert len(found) > block, f"no bash block {block} in {path}"
    return str(found[block]).splitlines()


def run_walkthrough(
    path: Path,
    base_url: str,
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    addresses: Mapping[str, str] | None = None,
    block: int = 0,
) -> list[tuple[str, str]]:
    """Run each command of the block after its first line (which sets the shell's variables),
    in a shell that ran that first line; the command lines and what each printed. `env`, when
    given, is the commands' whole environment (for those that run `expense-tracker`); `cwd`,
    where they run (the files they write land there); `addresses` swaps other documented
    addresses (a receiver's) for the test's in every command; `block` picks a later block."""
    lines = shell_block(path, block)
    prelude = lines[0].replace(DOCUMENTED_ADDRESS, base_url)
    assert DOCUMENTED_ADDRESS in lines[0], "the block's first line sets the server's address"
    bash = shutil.which("bash")
    assert bash is not None
    ran: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line
        for documented, used in (addresses or {}).items():
            command = command.replace(documented, used)
        done = subprocess.run(  # noqa: S603 -- the documented command, run as a reader would
            [bash, "-c", f"{prelude}\n{command}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=None if env is None else dict(env),
            cwd=cwd,
        )
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        ran.append((line, done.stdout))
    return ran


def test_the_admin_walkthrough_does_what_its_comments_say(start_server: StartServer) -> None:
    server = start_server()
    ran = run_walkthrough(ROOT / "docs" / "admin-walkthrough.md", server.base_url)
    answers: list[Any] = [json.loads(out) for _, out in ran]

    promised = 0
    for (line, _), answer in zip(ran, answers, strict=True):
        claim = PROMISED_ID.search(line)
        if claim is not None:
            promised += 1
            assert answer["id"] == int(claim.group(2)), f"{line}\n{answer}"
    assert promised == 9  # a company, a team, three levels and four people

    policy, submitted, left, status, history, approved, refused, closed = answers[9:]
    assert "id" in policy
    assert submitted["expense_id"] == 1
    assert [a["approver"] for a in submitted["approvals_required"]] == [
        "Mia Manager",
        "Dora Director",
    ]
    assert [(r["step_number"], r["approver_id"]) for r in left["reassigned"]] == [(1, 10)]
    assert status["approvals"][0]["approver_name"] == "Max Manager"
    moves = [e for e in history["events"] if e["kind"] == "reassigned"]
    assert [(e["previous_approver_id"], e["approver_id"]) for e in moves] == [(9, 10)]
    assert (approved["step_approved"], approved["expense_status"]) == (1, "pending")
    assert refused["code"] == "pending_approvals_stranded"
    assert closed["expense_status"] == "approved"
