"""Operation rules in the database: how the rules in force differ from an app's declared
operations (for /readyz), and recording them (for `graphql-ledger migrate`, the only writer
of rules). create_entry() applies the rules in force, whatever its caller declares."""

from datetime import timedelta

from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage.connections import Connections

__all__ = ["OperationRules"]

# The operations whose rule in force is not the one declared (or that have none).
RULE_DIFFERENCES = """
    SELECT t.operation, t.amount, t.limit_kind, t.lifetime, r.amount AS stored_amount,
           r.limit_kind AS stored_limit_kind, r.lifetime AS stored_lifetime,
           r.operation IS NOT NULL AS stored
      FROM unnest($1::text[], $2::integer[], $3::text[], $4::interval[])
           AS t(operation, amount, limit_kind, lifetime)
      LEFT JOIN LATERAL (
           SELECT r.operation, r.amount, r.limit_kind, r.lifetime FROM operation_rules r
            WHERE r.operation = t.operation AND r.valid_from <= clock_timestamp()
            ORDER BY r.valid_from DESC
            LIMIT 1) r ON true
     WHERE r.operation IS NULL OR r.amount <> t.amount
        OR r.limit_kind IS DISTINCT FROM t.limit_kind OR r.lifetime IS DISTINCT FROM t.lifetime
     ORDER BY t.operation
"""


class OperationRules:
    """One app's declared operation rules against those recorded in its database."""

    def __init__(self, connections: Connections, operations: type[LedgerOperation]) -> None:
        self.connections = connections
        self.operations = operations

    def _declared_rules(
        self,
    ) -> tuple[list[str], list[int], list[str | None], list[timedelta | None]]:
        operations = list(self.operations)
        return (
            [op.name for op in operations],
            [op.amount for op in operations],
            [op.limit.value if op.limit else None for op in operations],
            [op.expires_after for op in operations],
        )

    async def differences(self) -> list[str]:
        """How the rules in force in the database differ from this app's operations, in
        words; empty when they are the same."""
        async with self.connections.connection() as connection:
            rows = await connection.fetch(RULE_DIFFERENCES, *self._declared_rules())
        return [
            f"{row['operation']}: {_rule(row['amount'], row['limit_kind'], row['lifetime'])} here, "
            + (
                _rule(row["stored_amount"], row["stored_limit_kind"], row["stored_lifetime"])
                + " in the database"
                if row["stored"]
                else "none in the database"
            )
            for row in rows
        ]

    async def record(self) -> int:
        """Records this app's operation rules (amounts, limits and lifetimes) where they differ from
        those recorded, which create_entry() applies from then on (record_operation_rules()
        takes the rules' lock). Returns how many operations changed. Only `graphql-ledger
        migrate` calls it, as the owner: a rule change then happens once per release, never
        because an older process restarted, and the serving role may not call it."""
        async with self.connections.connection() as connection:
            changed: int = await connection.fetchval(
                "SELECT record_operation_rules($1, $2, $3, $4)", *self._declared_rules()
            )
        return changed


def _rule(amount: int, limit_kind: str | None, lifetime: timedelta | None) -> str:
    return (
        f"{amount:+d} credits"
        + (f", limit {limit_kind}" if limit_kind else "")
        + (f", expiring after {lifetime}" if lifetime else "")
    )
