"""Balance notifications: create_entry() announces each entry it writes on the channel
ledger_balances, with the owner's new balance, so every server process can push it to
its subscribers. NOTIFY is transactional: a refused or rolled-back entry announces
nothing, and listeners receive committed ones in commit order.

This revision changed create_entry() alone, and its version is not kept: every upgrade
runs to head in one transaction, so only head's functions ever serve. The announcement is
ledger_append_entry()'s, in migrations/sql/, installed by `migrate`. The revision stays so that
databases at 0004 still have their place in the history.
"""

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    """Nothing left to do here (see above)."""


def downgrade() -> None:
    raise NotImplementedError("0004 follows 0003, which is not reversible")
