"""The statements of holds and refunds: reserve, capture, release and refund are one call
each of their SQL function (one round trip; the rules, the locking and the refusals live
there), and the reads of holds by id and by owner."""

from collections.abc import Sequence
from dataclasses import dataclass

from graphql_ledger.holds import (
    AlreadyRefunded,
    CaptureOutcome,
    Hold,
    HoldNonceConflict,
    HoldNotOpen,
    HoldStatus,
    NotFound,
    NotRefundable,
    RefundOutcome,
    ReleaseOutcome,
    ReserveOutcome,
)
from graphql_ledger.ledger import (
    Entry,
    InsufficientCredits,
    InvalidInput,
    Metadata,
    NonceConflict,
    OperationNotAllowed,
)
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage.connections import Connections
from graphql_ledger.storage.rows import (
    ENTRY_COLUMNS,
    HOLD_COLUMNS,
    WRITTEN_ENTRY,
    WRITTEN_HOLD,
    entry_of,
    hold_of,
    metadata_json,
    written_entry,
    written_hold,
)

__all__ = ["HoldPageQuery", "HoldRepository"]

RESERVE = f"SELECT {WRITTEN_HOLD} FROM reserve_credits($1, $2, $3, $4, $5, $6::jsonb)"
CAPTURE = f"SELECT {WRITTEN_ENTRY} FROM capture_hold($1, $2, $3::jsonb, $4, $5)"
RELEASE = f"SELECT {WRITTEN_HOLD} FROM release_hold($1, $2, $3)"
REFUND = f"SELECT {WRITTEN_ENTRY} FROM refund_entry($1, $2, $3::jsonb)"

HOLDS_BY_ID = f"SELECT {HOLD_COLUMNS} FROM holds h WHERE h.id = ANY($1::bigint[])"

ENTRY_BY_ID = f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = $1"

# A page of an owner's holds, newest first (ids grow within an owner, drawn under its
# lock), of one status as clients see it, or of every status.
HOLD_PAGE = f"""
    SELECT {HOLD_COLUMNS}
      FROM holds h
     WHERE h.owner_id = $1 AND h.id < coalesce($2, 9223372036854775807)
       AND ($3::text IS NULL
            OR ledger_hold_status(h.status, h.expires_at, clock_timestamp()) = $3)
     ORDER BY h.id DESC
     LIMIT $4
"""


@dataclass(frozen=True, slots=True)
class HoldPageQuery:
    """A page of an owner's holds: at most `first`, older than hold `after`, of `status`
    (None: every status)."""

    owner_id: str
    status: HoldStatus | None
    first: int
    after: int | None


class HoldRepository:
    """Holds and refunds of one app's ledger."""

    def __init__(self, connections: Connections, operations: type[LedgerOperation]) -> None:
        self.connections = connections
        self.operations = operations

    async def reserve(
        self,
        owner_id: str,
        operation: LedgerOperation,
        nonce: str,
        quantity: int,
        expires_in: int,
        metadata: Metadata | None,
    ) -> ReserveOutcome:
        """Reserves `quantity` units of `operation` for `expires_in` seconds."""
        row = await self.connections.write(
            RESERVE,
            owner_id,
            operation.name,
            nonce,
            quantity,
            expires_in,
            metadata_json(metadata),
        )
        match row["outcome"]:
            case "insufficient_credits":
                return InsufficientCredits(balance=row["current_balance"], required=row["required"])
            case "nonce_conflict":
                return NonceConflict(existing=await self._entry(row["entry_id"]))
            case "not_reservable":
                return InvalidInput("operation", f"{operation.name} cannot be reserved")
            case "too_large":
                return InvalidInput("quantity", "this quantity reserves more than 2,147,483,647")
            case "hold_nonce_conflict":
                return HoldNonceConflict(hold_of(row, self.operations, prefix="hold_"))
            case _:
                return written_hold(row, self.operations)

    async def capture(
        self,
        hold_id: int,
        quantity: int | None,
        metadata: Metadata | None,
        as_owner: str | None,
        user_operations: Sequence[str] | None,
    ) -> CaptureOutcome:
        """Books `quantity` units (all when None) of the hold and releases the rest.
        `as_owner` and `user_operations` restrict an end user to their own holds of the
        operations they may invoke."""
        row = await self.connections.write(
            CAPTURE,
            hold_id,
            quantity,
            metadata_json(metadata),
            as_owner,
            None if user_operations is None else list(user_operations),
        )
        match row["outcome"]:
            case "not_found":
                return NotFound("hold")
            case "operation_not_allowed":
                return OperationNotAllowed("this token may not capture this hold's operation")
            case "invalid_quantity":
                return InvalidInput(
                    "quantity", f"quantity must be from 1 to the {row['reserved']} reserved"
                )
            case "hold_not_open":
                return HoldNotOpen(await self.by_id(row["hold_id"]))
            case _:
                return written_entry(row, self.operations)

    async def release(
        self, hold_id: int, as_owner: str | None, user_operations: Sequence[str] | None
    ) -> ReleaseOutcome:
        """Ends an open hold; its credits are available again."""
        row = await self.connections.write(
            RELEASE, hold_id, as_owner, None if user_operations is None else list(user_operations)
        )
        match row["outcome"]:
            case "not_found":
                return NotFound("hold")
            case "operation_not_allowed":
                return OperationNotAllowed("this token may not release this hold's operation")
            case "hold_not_open":
                return HoldNotOpen(hold_of(row, self.operations, prefix="hold_"))
            case _:
                return written_hold(row, self.operations, created="released")

    async def refund(self, entry_id: int, nonce: str, metadata: Metadata | None) -> RefundOutcome:
        """Reverses an OPERATION or CAPTURE entry, at most once."""
        row = await self.connections.write(REFUND, entry_id, nonce, metadata_json(metadata))
        match row["outcome"]:
            case "not_found":
                return NotFound("entry")
            case "insufficient_credits":
                return InsufficientCredits(balance=row["current_balance"], required=row["required"])
            case "too_large":
                return InvalidInput("entryId", "this refund would take the balance too high")
            case "hold_nonce_conflict":
                return HoldNonceConflict(await self.by_id(row["hold_id"]))
            case "nonce_conflict":
                return NonceConflict(existing=entry_of(row, self.operations, prefix="entry_"))
            case "not_refundable":
                return NotRefundable(entry_of(row, self.operations, prefix="entry_"))
            case "already_refunded":
                return AlreadyRefunded(entry_of(row, self.operations, prefix="entry_"))
            case _:
                return written_entry(row, self.operations)

    async def by_id(self, hold_id: int) -> Hold:
        """The hold of this id, which a write just named: read on the primary, which a
        replica may not have caught up with yet."""
        rows = await self.connections.read(HOLDS_BY_ID, [hold_id], primary=True)
        return hold_of(rows[0], self.operations)

    async def holds_by_id(self, hold_ids: Sequence[int]) -> dict[int, Hold]:
        """The holds of these ids that exist, by id, in one statement."""
        rows = await self.connections.read(HOLDS_BY_ID, list(set(hold_ids)))
        return {row["id"]: hold_of(row, self.operations) for row in rows}

    async def page(self, query: HoldPageQuery) -> tuple[list[Hold], bool]:
        """A page of an owner's holds, newest first, and whether older ones follow."""
        rows = await self.connections.read(
            HOLD_PAGE,
            query.owner_id,
            query.after,
            query.status.value if query.status else None,
            query.first + 1,
        )
        holds = [hold_of(row, self.operations) for row in rows]
        return holds[: query.first], len(holds) > query.first

    async def _entry(self, entry_id: int) -> Entry:
        """The entry of this id, which a write just named (on the primary, as by_id)."""
        rows = await self.connections.read(ENTRY_BY_ID, entry_id, primary=True)
        return entry_of(rows[0], self.operations)
