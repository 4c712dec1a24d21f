"""What an approval request says, and that it arrives whole through a real SMTP server."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from adapters.mail import SmtpMailer, SmtpTarget
from entrypoints.mail import approval_request, expense_url
from tests.mail.conftest import SmtpServer

SENDER = "Expense Tracker <noreply@expenses.test>"


def request(**changes: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "to_name": "Frank Miller",
        "to_email": "frank@techcorp.example",
        "sender": SENDER,
        "expense_id": 12,
        "amount": "250.00",
        "submitter_name": "Alice Smith",
        "policy_name": "Small Equipment",
        "description": "A standing desk",
        "step_number": 1,
        "on_behalf_of_name": None,
        "public_url": "https://expenses.example.com",
    }
    return approval_request(**(fields | changes))


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain text and the HTML of a message."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def test_the_subject_names_expense_amount_and_submitter() -> None:
    assert request()["Subject"] == "Approval needed: expense #12, 250.00 by Alice Smith"


def test_the_headers_address_the_approver() -> None:
    message = request(to_name="Müller, Zoë", to_email="zoe@techcorp.example")

    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Müller, Zoë", "zoe@techcorp.example")
    assert message["From"] == SENDER
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Message-ID"].endswith("@expenses.test>")
    assert request()["Message-ID"] != message["Message-ID"]
    # On the wire every header and part is 7-bit: names are encoded, not sent raw.
    assert message.as_bytes().isascii()


def test_both_parts_tell_amount_submitter_policy_description_and_link() -> None:
    for part in parts(request()):
        assert "250.00" in part
        assert "Alice Smith" in part
        assert "Small Equipment" in part
        assert "A standing desk" in part
        assert "https://expenses.example.com/app/expenses/12" in part
        assert "Step 1" in part
        assert "delegate" not in part


@pytest.mark.parametrize(
    "public_url",
    ["https://expenses.example.com", "https://expenses.example.com/", "https://x.example/tracker/"],
)
def test_the_link_joins_the_public_url_with_one_slash(public_url: str) -> None:
    link = expense_url(public_url, 12)

    assert link == public_url.rstrip("/") + "/app/expenses/12"
    assert "//app" not in link
    text, html = parts(request(public_url=public_url))
    assert link in text
    assert f'href="{link}"' in html


def test_user_text_is_escaped_in_the_html() -> None:
    text, html = parts(
        request(
            description="<b>&",
            submitter_name='Bob "<script>"',
            policy_name="R&D <tools>",
            to_name="<i>Frank</i>",
        )
    )

    assert "&lt;b&gt;&amp;" in html
    assert "<b>" not in html
    assert "<script>" not in html
    assert "Bob &quot;&lt;script&gt;&quot;" in html
    assert "R&amp;D &lt;tools&gt;" in html
    assert "&lt;i&gt;Frank&lt;/i&gt;" in html
    assert "<b>&" in text  # plain text is shown as it is


def test_the_html_loads_nothing_from_elsewhere() -> None:
    _, html = parts(request())

    assert "<img" not in html
    assert "<link" not in html
    assert "<script" not in html
    assert "http" not in html.replace("https://expenses.example.com/app/expenses/12", "")


def test_no_description_says_nothing_of_one() -> None:
    for part in parts(request(description=None)):
        assert "Description" not in part


def test_a_delegate_is_told_whom_they_act_for() -> None:
    for part in parts(request(on_behalf_of_name="Eve Davis", step_number=2)):
        assert "Eve Davis" in part
        assert "delegate" in part
        assert "step 2" in part


@pytest.mark.parametrize(
    "changes",
    [{"sender": "noreply"}, {"sender": ""}, {"to_email": "frank"}],
    ids=["sender without domain", "no sender", "recipient without domain"],
)
def test_an_address_without_a_domain_is_refused(changes: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="domain"):
        request(**changes)


def test_the_request_arrives_whole(smtp_server: SmtpServer) -> None:
    message = request(
        to_name="Zoë Müller", description="<b>& a desk", on_behalf_of_name="Eve Davis"
    )

    SmtpMailer(SmtpTarget.from_url(smtp_server.url), sender="noreply@expenses.test").send(message)

    [received] = smtp_server.received
    assert received.rcpt_tos == ("frank@techcorp.example",)
    got = received.message
    assert got["Subject"] == "Approval needed: expense #12, 250.00 by Alice Smith"
    assert got["To"].addresses[0].display_name == "Zoë Müller"
    assert got["Message-ID"] == message["Message-ID"]
    assert got.get_content_type() == "multipart/alternative"
    text, html = parts(got)
    assert "https://expenses.example.com/app/expenses/12" in text
    assert "<b>& a desk" in text
    assert "&lt;b&gt;&amp; a desk" in html
    assert "Eve Davis" in html
