"""Who an identity provider vouches for, and when two e-mail addresses name the same person:
when they are equal apart from the case of ASCII letters."""

from __future__ import annotations

import string

import attrs

from expense_core.model import CompanyId

# ASCII only, in every adapter alike: SQLite's lower() folds nothing else, and an address that
# matched on PostgreSQL but not on SQLite would sign someone in on one store only.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_key(email: str) -> str:
    """The address as compared: ASCII letters in lower case, every other character as is."""
    return email.translate(_ASCII_LOWER)


@attrs.frozen
class Identity:
    """A person an identity provider (`issuer`) vouched for by e-mail address, in the company
    that trusts that provider."""

    company_id: CompanyId
    email: str
    issuer: str
