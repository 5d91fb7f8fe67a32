"""Events for backends: a transactional outbox of webhook events and low-balance alerts
(CONTRACT.md section 6).

events is the outbox: one row per event, written by the write functions in the same
transaction as the change it reports, keyed by owner first (a Citus distribution column).
owner_seq is the balances.version the change made: drawn under the owner's balance lock, it
orders an owner's events as their transactions committed, which ids (a sequence) do not.
status is 'pending' until delivered ('delivered', kept for the retention, then pruned) or
dead-lettered after the retry window, counted from retry_from ('dead'). The partial indexes
serve the delivery worker (an owner's oldest pending event, the due ones), pruning and the
dead-letter count.

ledger_settings is one row, set by each serving process at start through
ledger_configure_events(): whether the app has a webhook (with none, the write functions
write no event) and the app's low-balance threshold. balance_alerts holds an owner's own
threshold (setBalanceAlert) and whether its alert is armed (available was at or above the
threshold since the last alert).

"""

from alembic import op

revision = "0008"
down_revision = "0007"


EVENTS = """
CREATE TABLE events (
    owner_id        text        NOT NULL,
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    owner_seq       bigint      NOT NULL,
    type            text        NOT NULL,
    created_on      timestamptz NOT NULL,
    data            jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    retry_from      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_on    timestamptz,
    last_error      text,
    PRIMARY KEY (owner_id, id)
)
"""


def upgrade() -> None:
    # Keyed by owner first, as every table (Citus-ready); owner_seq orders an owner's events.
    op.execute(EVENTS)
    op.execute(
        "CREATE INDEX events_pending_order ON events (owner_id, owner_seq, id)"
        " WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX events_pending_due ON events (next_attempt_at) WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX events_delivered_on ON events (delivered_on) WHERE status = 'delivered'"
    )
    op.execute("CREATE INDEX events_dead ON events (id) WHERE status = 'dead'")
    op.execute(
        """
        CREATE TABLE ledger_settings (
            singleton    boolean NOT NULL PRIMARY KEY DEFAULT true CHECK (singleton),
            webhooks     boolean NOT NULL DEFAULT false,
            low_balance  integer,
            owner_alerts boolean NOT NULL DEFAULT false
        )
        """
    )
    op.execute("INSERT INTO ledger_settings DEFAULT VALUES")
    op.execute(
        """
        CREATE TABLE balance_alerts (
            owner_id text    NOT NULL PRIMARY KEY,
            below    integer,
            armed    boolean
        )
        """
    )


def downgrade() -> None:
    raise NotImplementedError("0008 follows 0003, which is not reversible")
