"""Synthetic organisations for load tests and demos: companies of teams on 7-level ladders.

What is drawn lives in `draw`; two ways store it. `seed` (`services`) goes through
`OrgService` and `ExpenseService`, one unit of work at a time: any store, slow. `seed_bulk`
(`bulk`) works out the same expenses with the pure functions the services call and hands them
to the store's bulk loader: a million expenses in minutes on PostgreSQL. Both draw every choice
from one seeded random stream in the same order and read time from the same ticking clock, so
the same seed and starting time give the same rows either way (but for when the policies were
created, which the services take from the wall clock).
"""

from entrypoints.synthetic.bulk import BATCH, seed_bulk, seed_database
from entrypoints.synthetic.draw import (
    AMOUNTS,
    APPROVE_COMMENT,
    FINANCE,
    FIRST_NAMES,
    LADDER,
    LAST_NAMES,
    MIN_TEAM,
    MIN_USERS,
    REJECT_REASON,
    SUBMITTING_TITLES,
    TEAM_NAMES,
    TEAM_SIZE,
    TICK,
    UNBOUNDED,
    Advance,
    SyntheticCompany,
    SyntheticOrgs,
    progress_steps,
    random_amount,
    rungs,
    team_sizes,
)
from entrypoints.synthetic.services import seed

__all__ = [
    "AMOUNTS",
    "APPROVE_COMMENT",
    "BATCH",
    "FINANCE",
    "FIRST_NAMES",
    "LADDER",
    "LAST_NAMES",
    "MIN_TEAM",
    "MIN_USERS",
    "REJECT_REASON",
    "SUBMITTING_TITLES",
    "TEAM_NAMES",
    "TEAM_SIZE",
    "TICK",
    "UNBOUNDED",
    "Advance",
    "SyntheticCompany",
    "SyntheticOrgs",
    "progress_steps",
    "random_amount",
    "rungs",
    "seed",
    "seed_bulk",
    "seed_database",
    "team_sizes",
]
