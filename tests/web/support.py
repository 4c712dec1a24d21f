"""A person at the pages through Litestar's test client: reads the CSRF token from the page a
form is on, as a browser would send it, and reads what a page shows next to each field."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs
import httpx
from litestar import Litestar
from litestar.testing import TestClient

Client: TypeAlias = TestClient[Litestar]

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
_KEY = re.compile(r'name="idempotency_key" value="([^"]*)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def error_beside(page: str, field: str) -> str:
    """The error the page shows next to a field (by the field's id), as text."""
    found = re.search(rf'<p class="error" id="{re.escape(field)}-error"[^>]*>(.*?)</p>', page, re.S)
    return "" if found is None else html.unescape(found.group(1)).strip()


def text_of(page: str) -> str:
    """The page's text without tags, whitespace collapsed."""
    # Only ASCII blanks collapse: amounts keep their narrow no-break spaces.
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return re.sub(r"[ \t\r\n]+", " ", text).strip()


@attrs.define
class Visitor:
    """Someone using the pages with a browser of their own: a cookie jar of their own on the
    test client that everyone shares (one app, started once)."""

    client: Client
    jar: httpx.Cookies = attrs.Factory(httpx.Cookies)

    def get(self, path: str, **headers: str) -> httpx.Response:
        return self.request("GET", path, headers=headers)

    def post(
        self, path: str, data: Mapping[str, str | list[str]], **headers: str
    ) -> httpx.Response:
        return self.request("POST", path, data=data, headers=headers)

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        self.client.cookies = self.jar
        try:
            return self.client.request(method, path, follow_redirects=False, **options)
        finally:
            self.jar = self.client.cookies

    def submit(
        self,
        page: str,
        action: str,
        form: Mapping[str, str | list[str]],
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Open `page`, then post `form` to `action` with the page's CSRF token (and its
        idempotency key, when it has one), not following the redirect."""
        shown = self.get(page)
        assert shown.status_code == 200, shown.text
        data: dict[str, str | list[str]] = {"csrf_token": csrf_of(shown.text)}
        key = _KEY.search(shown.text)
        if key is not None:
            data["idempotency_key"] = key.group(1)
        data.update(form)
        return self.post(action, data, **dict(headers or {}))

    def sign_in(self, user_id: int) -> None:
        answer = self.submit("/app/", "/app/sign-in", {"person": str(user_id)})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/app/expenses"

    def sign_out(self) -> None:
        answer = self.submit("/app/expenses", "/app/sign-out", {})
        assert answer.status_code == 303, answer.text

    def new_expense(self, **form: str) -> int:
        """Submit the new-expense form; the id of the expense page it opens."""
        answer = self.submit("/app/expenses/new", "/app/expenses/new", form)
        assert answer.status_code == 303, text_of(answer.text)
        location = answer.headers["location"]
        assert location.startswith("/app/expenses/"), location
        return int(location.rsplit("/", 1)[1])

    def decide(
        self, expense_id: int, decision: str, comment: str = "", **extra: str
    ) -> httpx.Response:
        return self.submit(
            f"/app/expenses/{expense_id}",
            f"/app/expenses/{expense_id}/decide",
            {"decision": decision, "comment": comment, **extra},
        )
