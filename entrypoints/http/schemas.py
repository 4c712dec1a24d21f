"""The wire's shared vocabulary: ids, texts, amounts and times as the API reads and writes them.

Request bodies refuse unknown fields and hold ids, texts and amounts to the rules of the store
(ids fit PostgreSQL's INTEGER, texts have at most 2,000 characters and no NUL). Amounts arrive as
exact decimals (a JSON number, decoded without float, or a decimal string) and become `Money`
here; money leaves as a JSON number written from the exact decimal. Times are ISO-8601 UTC with
milliseconds ("2025-08-25T10:30:00.000Z"), as the seed shows them. The bodies and responses of
each part of the API, with their mapping to core types, live beside it: `expense_schemas.py`,
`admin_schemas.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Final

from litestar.params import Parameter
from msgspec import Meta, Raw, Struct

from expense_core.model import TEXT_LIMIT, Money

MAX_ID: Final = 2_147_483_647  # PostgreSQL INTEGER, the seed's SERIAL ids
NO_NUL: Final = "^[^\\x00]*$"  # PostgreSQL text cannot hold NUL characters

Id = Annotated[int, Meta(ge=1, le=MAX_ID, description="A positive integer id.")]
ActorId = Annotated[
    int,
    Meta(
        ge=1,
        le=MAX_ID,
        description=(
            "The acting user. Required with AUTH_MODE=demo; with a bearer token it may be "
            "omitted, and if given must be the token's user."
        ),
    ),
]
Text = Annotated[
    str,
    Meta(max_length=TEXT_LIMIT, pattern=NO_NUL, description="Free text, at most 2,000 characters."),
]
Category = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=50,
        pattern=NO_NUL,
        description="A policy category, e.g. 'equipment' or 'travel'.",
    ),
]
AmountIn = Annotated[
    Decimal,
    Meta(
        description=(
            "A JSON number or a decimal string, read exactly: greater than 0, at most "
            "9999999999.99, at most 2 decimal places."
        ),
        extra_json_schema={
            "examples": [1200.00, "800.00"],
            "extra": {"type": ["number", "string"]},
        },
    ),
]
MoneyOut = Annotated[
    Raw,
    Parameter(
        description="An exact amount with 2 decimal places, as a JSON number.",
        schema_extra={"type": "number"},
    ),
]
Timestamp = Annotated[
    str,
    Meta(
        description="ISO-8601 UTC with milliseconds.",
        examples=["2025-08-25T10:30:00.000Z"],
    ),
]


def money(amount: Money) -> Raw:
    """Money as a JSON number, written from its exact decimal (never through float)."""
    return Raw(format(amount.value, "f").encode())


def timestamp(at: datetime) -> str:
    """An instant as the seed writes it: UTC, milliseconds, 'Z'."""
    # A store that hands back naive times keeps UTC in them (the seed's TIMESTAMP columns).
    utc = at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def maybe_timestamp(at: datetime | None) -> str | None:
    return None if at is None else timestamp(at)


def parse_amount(raw: Decimal) -> Money:
    """The amount of a request body as `Money`.

    Raises:
        InvalidAmount: not finite, negative, over 9999999999.99 or with 3 decimal places.
    """
    return Money.parse(raw)


# --- health ----------------------------------------------------------------------------------


class Healthy(Struct):
    status: str
    service: str
    version: str
    auth_mode: str


class Probe(Struct):
    status: str
