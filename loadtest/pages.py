"""Page views beside the mix (`make load PAGES=1`): approvers reading their inbox and the
expenses in it, in a browser's place.

Each `PageViewer` signs in to the pages as the demo company's first approver (Frank Miller,
whom every demo submission of the mix waits for first), then alternates between the inbox page
and the page of an expense it listed. The pages render the same use cases as the API, so their
latency is the use cases' plus the rendering; the runner reports them under `/app/inbox` and
`/app/expenses/[id]`.
"""

from __future__ import annotations

import random
import re
from typing import Final

from locust import FastHttpUser, task

from loadtest.mix import DEMO_APPROVER

INBOX_NAME: Final = "/app/inbox"
EXPENSE_PAGE_NAME: Final = "/app/expenses/[id]"
SHARE: Final = 10  # one user in this many views pages
_CSRF: Final = re.compile(r'name="csrf_token" value="([^"]+)"')
_LINKED: Final = re.compile(r'href="/app/expenses/(\d+)"')


class PageViewer(FastHttpUser):
    """An approver with a browser: the inbox, then an expense in it, and again."""

    delay: float = 0.1  # set by the runner to the scenario's
    weight = 1

    def wait_time(self) -> float:
        return self.delay

    def on_start(self) -> None:
        self.chooser = random.Random()
        self.listed: list[int] = []
        with self.client.get("/app/", name="/app/ (sign-in page)", catch_response=True) as page:
            found = _CSRF.search(page.text or "")
            if page.status_code != 200 or found is None:
                page.failure(f"sign-in page answered {page.status_code} without a form")
                return
        form = {"csrf_token": found.group(1), "person": str(DEMO_APPROVER)}
        with self.client.post(
            "/app/sign-in",
            data=form,
            name="/app/sign-in",
            allow_redirects=False,
            catch_response=True,
        ) as answer:
            if answer.status_code != 303:
                answer.failure(f"sign-in answered {answer.status_code}")

    @task
    def inbox(self) -> None:
        with self.client.get(INBOX_NAME, name=INBOX_NAME, catch_response=True) as page:
            if page.status_code != 200 or "<h1>Inbox" not in (page.text or ""):
                page.failure(f"inbox answered {page.status_code}")
                return
            self.listed = [int(found) for found in _LINKED.findall(page.text or "")]

    @task
    def expense(self) -> None:
        if not self.listed:
            self.inbox()
            return
        expense_id = self.chooser.choice(self.listed)
        with self.client.get(
            f"/app/expenses/{expense_id}", name=EXPENSE_PAGE_NAME, catch_response=True
        ) as page:
            if page.status_code != 200 or f"#{expense_id}" not in (page.text or ""):
                page.failure(f"expense page answered {page.status_code}")


__all__ = ["EXPENSE_PAGE_NAME", "INBOX_NAME", "SHARE", "PageViewer"]
