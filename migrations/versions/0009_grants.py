"""Expiring grants (CONTRACT.md section 5): credits that expire, spent soonest-expiring first.

entries gains expires_at (a positive operation entry whose credits expire: a grant) and
expiry_of (an EXPIRY entry's grant). An EXPIRY entry is the ledger's own, booked for no
client request, so it has no nonce of its own (NULL: clients read its grant's) and claims
none of the owner's nonces.

grants keeps the state of each expiring grant: remaining is what is neither spent, nor
reserved by an OPEN hold, nor booked out as expired; `given` says a service token chose
expires_at (else it is created_on + the rule's lifetime, which verify checks). grant_uses
records, append-only, which grant each spend, reserve, capture and refund took credits
from (credits > 0) or gave them back to (< 0): a refund returns credits to the grants they
came from, and a hold's credits go back to their grants when it ends. taken_on is when the
credits left the grant (a capture's: its hold's reserve), and grant_uses_before_expiry makes
"no credit is spent after its grant expired" PostgreSQL's rule.

balances gains expiring (the sum of its grants' remaining) and expiring_until (the next
instant a credit of the owner lapses: a grant with credits left expires, or a hold holding
an expired grant's credits ends; NULL when none will). balances_held_within_balance becomes
balance >= held + expiring: what never expires, the rest, is never below 0. While
expiring_until is ahead (or NULL), a read needs nothing more than the balance row; past it,
reads compute what has lapsed, and the expiry pass (or the owner's next write) books it.

Credits that never expire are not tracked per entry: they are spent oldest first, so each
such entry's remaining follows from the owner's figures (graphql_ledger.storage.grants).

operation_rules gains lifetime (NULL: the operation's credits never expire).
"""

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE entries
            ADD COLUMN expires_at timestamptz,
            ADD COLUMN expiry_of bigint,
            ALTER COLUMN nonce DROP NOT NULL,
            ADD CONSTRAINT entries_expiry_of_expiries
                CHECK ((coalesce(kind, '') = 'expiry') = (expiry_of IS NOT NULL)),
            ADD CONSTRAINT entries_nonce_unless_expiry
                CHECK ((coalesce(kind, '') = 'expiry') = (nonce IS NULL)),
            ADD CONSTRAINT entries_expiring_credits
                CHECK (expires_at IS NULL
                       OR (kind IS NULL AND amount > 0 AND expires_at > created_on))
        """
    )
    op.execute(
        "CREATE INDEX entries_owner_expiry ON entries (owner_id, expiry_of)"
        " WHERE expiry_of IS NOT NULL"
    )
    op.execute(
        """
        CREATE TABLE grants (
            owner_id   text        NOT NULL,
            entry_id   bigint      NOT NULL,
            operation  text        NOT NULL,
            nonce      text        NOT NULL,
            amount     integer     NOT NULL CHECK (amount > 0),
            created_on timestamptz NOT NULL,
            expires_at timestamptz NOT NULL CHECK (expires_at > created_on),
            given      boolean     NOT NULL,
            remaining  integer     NOT NULL,
            PRIMARY KEY (owner_id, entry_id),
            CONSTRAINT grants_remaining_within_amount CHECK (remaining BETWEEN 0 AND amount)
        )
        """
    )
    # The grants spends take from (soonest first) and the expiry pass books out.
    op.execute(
        "CREATE INDEX grants_unspent ON grants (owner_id, expires_at, entry_id) WHERE remaining > 0"
    )
    op.execute(
        """
        CREATE TABLE grant_uses (
            owner_id   text        NOT NULL,
            grant_id   bigint      NOT NULL,
            entry_id   bigint,
            hold_id    bigint,
            credits    integer     NOT NULL CHECK (credits <> 0),
            taken_on   timestamptz NOT NULL,
            moved_on   timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            CONSTRAINT grant_uses_by_entry_or_hold CHECK ((entry_id IS NULL) <> (hold_id IS NULL)),
            CONSTRAINT grant_uses_before_expiry CHECK (credits < 0 OR taken_on < expires_at)
        )
        """
    )
    op.execute("CREATE INDEX grant_uses_grant ON grant_uses (owner_id, grant_id)")
    op.execute(
        "CREATE INDEX grant_uses_entry ON grant_uses (owner_id, entry_id)"
        " WHERE entry_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX grant_uses_hold ON grant_uses (owner_id, hold_id) WHERE hold_id IS NOT NULL"
    )
    op.execute(
        """
        ALTER TABLE balances
            ADD COLUMN expiring integer NOT NULL DEFAULT 0 CHECK (expiring >= 0),
            ADD COLUMN expiring_until timestamptz,
            DROP CONSTRAINT balances_held_within_balance,
            ADD CONSTRAINT balances_held_within_balance
                CHECK (balance >= held::bigint + expiring)
        """
    )
    # The owners the expiry pass has work for, soonest first.
    op.execute(
        "CREATE INDEX balances_expiring_until ON balances (expiring_until)"
        " WHERE expiring_until IS NOT NULL"
    )
    op.execute("ALTER TABLE operation_rules ADD COLUMN lifetime interval")


def downgrade() -> None:
    raise NotImplementedError("0009 follows 0003, which is not reversible")
