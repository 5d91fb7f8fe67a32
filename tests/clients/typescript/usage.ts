// What a frontend writes against the generated client; tests/test_clients.py copies it next
// to the generated healthai.ts and type-checks both with `tsc --noEmit --strict`. It fails to
// compile when the schema loses an operation, or the createEntry union gains or loses a member
// this switch does not handle.
import {
  type BalanceQuery,
  type CreditMutationVariables,
  HealthAiOperation,
  type SpendMutation,
} from "./healthai";

export const purchase: HealthAiOperation = HealthAiOperation.CreditAdd;

export const variables: CreditMutationVariables = { ownerId: "alice", nonce: "purchase-1" };

export function describe(result: SpendMutation["createEntry"]): string {
  switch (result.__typename) {
    case "LedgerEntry":
      return `${result.operation} ${result.amount}: balance ${result.balanceAfter}`;
    case "InsufficientCredits":
      return `${result.code}: needs ${result.required}, has ${result.balance}`;
    case "NonceConflict":
    case "InvalidInput":
    case "OperationNotAllowed":
    case "LimitReached":
    case "HoldNonceConflict":
      return `${result.code}: ${result.message}`;
    default: {
      const unhandled: never = result;
      return unhandled;
    }
  }
}

export function credits(answer: BalanceQuery): number {
  return answer.balance.balance;
}
