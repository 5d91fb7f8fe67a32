"""The ledger's SQL functions. Each one's source is a file of migrations/sql/, always at its
newest version: revisions change tables, and `migrate`, once the revisions have run, installs
the functions in the same transaction (`install_ledger_functions`), dropping every earlier
version first. So no function's body is copied from revision to revision, and a change to one
needs no revision of its own. An install is skipped when the sources are those installed
(their digest is kept in ledger_installed_functions), so that a `migrate` that changes
nothing replaces no function under the serving processes.

A few functions that tables depend on (a trigger's, a CHECK's) are created by the revision
that needs them, with CREATE OR REPLACE, through `install_functions`; their signature never
changes.

Every file runs with the search_path pinned to the ledger's schema and pg_temp, which the
SECURITY DEFINER functions record (`SET search_path FROM CURRENT`), and every function is
callable by no one but the owner and those migrations/sql/serving_role.sql grants it to.
"""

import hashlib
import re
from pathlib import Path

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

__all__ = [
    "LEDGER_FUNCTIONS",
    "PINNED_FUNCTIONS",
    "SQL_DIR",
    "install_functions",
    "install_ledger_functions",
    "sql_source",
]

SQL_DIR = Path(__file__).resolve().parents[2] / "migrations" / "sql"

# The files of the functions tables depend on, which revisions create (CREATE OR REPLACE,
# never dropped) and `migrate` brings up to date with the rest.
PINNED_FUNCTIONS = (
    "refuse_entry_change",
    "ledger_is_identifier",
    "refuse_hold_change",
    "ledger_entry_is_well_formed",
    "ledger_balance_is_within_bounds",
    "ledger_hold_is_well_formed",
)

# The files of the replaceable functions (and the row types they answer), each after what
# it uses.
LEDGER_FUNCTIONS = (
    "ledger_entry_answer",
    "ledger_hold_answer",
    "ledger_rules_lock",
    "ledger_entry_by_nonce",
    "ledger_hold_by_nonce",
    "ledger_rule_in_force",
    "ledger_limit_key",
    "ledger_limit_reached",
    "ledger_held",
    "ledger_hold_status",
    "ledger_iso",
    "ledger_events_on",
    "ledger_record_event",
    "ledger_entry_event",
    "ledger_hold_event",
    "ledger_check_low_balance",
    "ledger_announce",
    "ledger_append_entry",
    "ledger_next_expiry",
    "ledger_lapsed",
    "ledger_grants_at",
    "ledger_lapsed_at",
    "ledger_grants_left",
    "ledger_grants",
    "ledger_expiring_within",
    "ledger_uses",
    "ledger_take_grants",
    "ledger_give_back",
    "ledger_end_hold_uses",
    "ledger_settle_holds",
    "ledger_book_expiries",
    "ledger_track_grants",
    "ledger_available",
    "ledger_move_balance",
    "ledger_raise_if_nonce_taken",
    "ledger_hold_for_write",
    "ledger_answer_entry",
    "ledger_answer_hold",
    "create_entry",
    "create_entry_with_amount",
    "reserve_credits",
    "capture_hold",
    "release_hold",
    "refund_entry",
    "ledger_expire_grants",
    "set_balance_alert",
    "ledger_configure_events",
    "ledger_claim_events",
    "ledger_claim_following",
    "ledger_record_attempts",
    "ledger_prune_events",
    "ledger_watch",
    "ledger_unwatch",
    "ledger_resend_events",
    "ledger_rule_changes",
    "record_operation_rules",
)

_CREATED_FUNCTION = re.compile(r"^CREATE (?:OR REPLACE )?FUNCTION (\w+)\(", re.MULTILINE)
_CREATED_TYPE = re.compile(r"^CREATE TYPE (\w+) AS", re.MULTILINE)
_PINNED_SEARCH_PATH = "quote_ident(current_schema()) || ', pg_temp'"


def sql_source(name: str) -> str:
    """The SQL of migrations/sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()


def install_functions(*names: str) -> None:
    """In a revision: creates the functions of these files (CREATE OR REPLACE), for a table
    that depends on them."""
    _install(op.get_bind(), names)


def install_ledger_functions(connection: Connection) -> bool:
    """Installs every replaceable function at its newest version, unless those installed
    are exactly these; returns whether it installed them."""
    files = PINNED_FUNCTIONS + LEDGER_FUNCTIONS
    digest = hashlib.sha256("\0".join(sql_source(name) for name in files).encode()).hexdigest()
    installed = connection.scalar(text("SELECT digest FROM ledger_installed_functions"))
    if installed == digest:
        return False
    sources = [sql_source(name) for name in LEDGER_FUNCTIONS]
    functions = sorted({n for source in sources for n in _CREATED_FUNCTION.findall(source)})
    for signature in _signatures(connection, functions):
        connection.execute(text(f"DROP FUNCTION {signature}"))
    for row_type in sorted({n for source in sources for n in _CREATED_TYPE.findall(source)}):
        connection.execute(text(f"DROP TYPE IF EXISTS {row_type}"))
    # The bodies may name functions created after them in the list; nothing runs them
    # before the transaction commits.
    connection.execute(text("SET LOCAL check_function_bodies = off"))
    _install(connection, files)
    connection.execute(text("RESET check_function_bodies"))
    connection.execute(text("DELETE FROM ledger_installed_functions"))
    connection.execute(
        text("INSERT INTO ledger_installed_functions (digest) VALUES (:digest)"),
        {"digest": digest},
    )
    return True


def _install(connection: Connection, files: tuple[str, ...]) -> None:
    previous = connection.scalar(text("SELECT current_setting('search_path')"))
    connection.execute(text(f"SELECT set_config('search_path', {_PINNED_SEARCH_PATH}, true)"))
    functions: set[str] = set()
    for name in files:
        source = sql_source(name)
        functions.update(_CREATED_FUNCTION.findall(source))
        connection.exec_driver_sql(source)
    connection.execute(
        text("SELECT set_config('search_path', :previous, true)"), {"previous": previous}
    )
    for signature in _signatures(connection, sorted(functions)):
        connection.execute(text(f"REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC"))


def _signatures(connection: Connection, names: list[str]) -> list[str]:
    """Every overload of these functions in the ledger's schema."""
    found = connection.scalars(
        text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.proname = ANY(:names) AND p.pronamespace = current_schema()::regnamespace"
        ),
        {"names": names},
    )
    return list(found.all())
