"""${message}

A function's source goes in migrations/sql/<name>.sql (its newest version only: every
upgrade runs to head in one transaction), installed by
graphql_ledger.storage.migrations.install_functions(name).
"""

from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
