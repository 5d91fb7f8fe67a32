"""Live balances notify only for owners someone watches (issue 16).

A NOTIFY in a write serializes every committing transaction on one cluster-wide lock (the
notification queue's), which halved the database's write capacity even when nobody was
subscribed. ledger_watches lists the owners a server process has live subscribers for
(one row per owner and process: `watcher`, a random id per process), and ledger_announce()
notifies only for those, and for an owner's first write (whose row a new subscriber could
not have locked). ledger_watchers records when each process last said it is alive; the
watches of a process unheard of for five minutes are removed by the others.
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger_watches (
            owner_id text NOT NULL,
            watcher  text NOT NULL,
            PRIMARY KEY (owner_id, watcher)
        )
        """
    )
    op.execute("CREATE INDEX ledger_watches_watcher ON ledger_watches (watcher)")
    op.execute(
        """
        CREATE TABLE ledger_watchers (
            watcher text        PRIMARY KEY,
            seen_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    raise NotImplementedError("0010 follows 0003, which is not reversible")
