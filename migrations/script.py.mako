"""${message}

Revisions change tables. A function's source goes in migrations/sql/<name>.sql, its newest
version only, listed in graphql_ledger.storage.functions.LEDGER_FUNCTIONS: `migrate`
installs them after the revisions. A function a table depends on (a trigger's, a CHECK's) is
created by its revision with install_functions(name), CREATE OR REPLACE.
"""

from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
