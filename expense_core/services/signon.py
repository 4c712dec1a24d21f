"""Sign-on: the user an identity provider's verified identity names, by e-mail address in the
company that trusts the provider; only an active user signs on."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from expense_core.errors import AmbiguousEmail, InactiveIdentity, NoUserWithEmail
from expense_core.identity import Identity
from expense_core.model import Member
from expense_core.ports import UnitOfWork


@attrs.frozen
class SignOnService:
    """Turn verified identities into members; nothing is remembered between calls, so a user
    deactivated (or whose address changed) is refused from the next request on."""

    new_uow: Callable[[], UnitOfWork]

    def member(self, identity: Identity) -> Member:
        """The active user of the identity's company whose e-mail address is the identity's,
        apart from the case of ASCII letters.

        Raises:
            NoUserWithEmail: no user of the company has the address.
            AmbiguousEmail: several have it, differing only in case (none is picked).
            InactiveIdentity: the user is inactive.
        """
        with self.new_uow() as uow:
            found = uow.org.members_by_email(identity.company_id, identity.email)
        if not found:
            raise NoUserWithEmail(identity.company_id, identity.email)
        if len(found) > 1:
            raise AmbiguousEmail(identity.company_id, identity.email)
        [member] = found
        if not member.user.active:
            raise InactiveIdentity(member.id)
        return member
