"""The messages people receive: what an e-mail says, in plain text and HTML, and where it
links; sending them is `adapters.mail`'s part.

Every value from a user (names, descriptions, policy names) is escaped into the HTML part; the
HTML carries no external image, style sheet or script, so it reads the same offline and
tracks no one.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape


def expense_url(public_url: str, expense_id: int) -> str:
    """The page where an expense is seen and decided, under the server's public URL."""
    return f"{public_url.rstrip('/')}/app/expenses/{expense_id}"


def sign_in_link_url(public_url: str, code: str) -> str:
    """The address of a one-time sign-in link, under the server's public URL."""
    return f"{public_url.rstrip('/')}/app/sign-in/link?code={code}"


def approval_request(
    *,
    to_name: str,
    to_email: str,
    sender: str,
    expense_id: int,
    amount: str,
    submitter_name: str,
    policy_name: str,
    description: str | None,
    step_number: int,
    on_behalf_of_name: str | None,
    public_url: str,
) -> EmailMessage:
    """Tell the person who must act now (an approver, or their delegate) that a step waits.

    `amount` is shown as given ("250.00"); `on_behalf_of_name` names the approver when the
    message goes to their delegate.

    Raises:
        ValueError: `sender` or `to_email` is not an address with a domain.
    """
    link = expense_url(public_url, expense_id)
    subject = f"Approval needed: expense #{expense_id}, {amount} by {submitter_name}"
    if on_behalf_of_name is None:
        whose = f"Step {step_number} of its approval is yours to decide."
    else:
        whose = (
            f"You are {on_behalf_of_name}'s delegate: step {step_number} of its approval is "
            "theirs, and you may decide it for them."
        )
    asks = f"{submitter_name} asks for {amount} under the policy {policy_name}."

    message = EmailMessage()
    message["From"] = sender
    message["To"] = Address(display_name=to_name, addr_spec=to_email)
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=_domain_of(message, "From"))
    _domain_of(message, "To")

    text = [f"Hello {to_name},", "", f"Expense #{expense_id} waits for a decision.", asks]
    if description:
        text += ["", "Description:", description]
    text += ["", whose, "", "See it and decide here:", link, ""]
    # Quoted-printable keeps every line 7-bit, whatever the names: no server is asked for
    # 8BITMIME.
    message.set_content("\n".join(text), cte="quoted-printable")

    details = f"<p>{escape(asks)}</p>\n"
    if description:
        details += (
            '<p>Description:</p>\n<blockquote style="white-space: pre-wrap">'
            f"{escape(description)}</blockquote>\n"
        )
    message.add_alternative(
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head>\n<body>\n"
        f"<p>Hello {escape(to_name)},</p>\n"
        f"<p>Expense #{expense_id} waits for a decision.</p>\n"
        f"{details}"
        f"<p>{escape(whose)}</p>\n"
        f'<p><a href="{escape(link)}">See expense #{expense_id} and decide</a></p>\n'
        "</body>\n</html>\n",
        subtype="html",
        cte="quoted-printable",
    )
    return message


def _domain_of(message: EmailMessage, header: str) -> str:
    """The domain of the one address in `header`, checked to be there."""
    addresses = message[header].addresses
    if len(addresses) != 1 or not addresses[0].domain:
        raise ValueError(f"{header} must be one address with a domain, not {message[header]!r}")
    return str(addresses[0].domain)
