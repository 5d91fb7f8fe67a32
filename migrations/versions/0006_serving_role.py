"""The ledger's functions from their one source, written for a serving role that may not
write tables, and the identifier rule as CHECK constraints.

Each function's source is a file in migrations/sql/, at its newest version, which `migrate`
installs once the revisions have run (graphql_ledger/storage/functions.py); this revision
creates only the identifier rule its CHECKs need. create_entry() is composed of small
functions, one per step: the replay lookup, the rule in force (under the rules' lock, whose
key ledger_rules_lock() alone gives), the limit check, the balance move under the owner's
row lock, the append with its notification. Rule registration is a function too,
record_operation_rules(), which takes that lock itself.

create_entry() runs as the ledger's owner (SECURITY DEFINER, search_path pinned to this
schema and pg_temp), so that the serving role, which `graphql-ledger migrate` grants only
SELECT and EXECUTE on create_entry() (migrations/sql/serving_role.sql), writes only through
it. No function is callable by PUBLIC.

ownerId and nonce, 1 to 255 characters without control or format characters, become
CHECK constraints on entries and balances: added NOT VALID, then validated, the way a
large table takes a constraint (in this one transaction the tables stay locked until the
migration commits either way).
"""

from alembic import op

from graphql_ledger.storage.functions import install_functions

revision = "0006"
down_revision = "0005"

IDENTIFIERS = {"entries": ("owner_id", "nonce"), "balances": ("owner_id",)}


def upgrade() -> None:
    install_functions("ledger_is_identifier")
    for table, columns in IDENTIFIERS.items():
        for column in columns:
            constraint = f"{table}_{column}_is_identifier"
            op.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {constraint}"
                f" CHECK (ledger_is_identifier({column})) NOT VALID"
            )
            op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}")


def downgrade() -> None:
    raise NotImplementedError("0006 follows 0003, which is not reversible")
