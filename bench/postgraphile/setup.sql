-- Applied to the benchmark's database after the ledger's migrations and before PostGraphile
-- starts. Idempotent, and a single statement (a DO block), so that any client can send it,
-- including drivers that prepare what they send (asyncpg). It creates no table, and of the
-- ledger's objects only drops the previous release's create_entry() signature (below).
--
-- PostGraphile 4 reads a single balance by primary key (`balanceByOwnerId`) and writes with
-- the ledger's own create_entry() (`createEntry`: VOLATILE functions become mutations) with
-- no help. What it lacks is a read of many owners in one SQL query: `allBalances`'
-- `condition` takes one value per column, and aliased `balanceByOwnerId` fields run one
-- query each. PostGraphile's usual answer is a STABLE set-returning function, which it
-- exposes as a query field; this one runs the ledger's own batch read (owner_id = ANY), and
-- PostgreSQL inlines it. The smart comment asks for a plain list rather than a Relay
-- connection, like the ledger's `balances(ownerIds:)`: the field is `balancesByOwnerIdsList`.
DO $setup$
BEGIN
    CREATE OR REPLACE FUNCTION balances_by_owner_ids(owner_ids text[]) RETURNS SETOF balances
        LANGUAGE sql STABLE AS $$
        SELECT b.* FROM balances b WHERE b.owner_id = ANY (owner_ids)
    $$;
    COMMENT ON FUNCTION balances_by_owner_ids(text[]) IS
        E'@simpleCollections only\nBalances of the given owners (owners with no entry are absent).';
    -- The previous release's create_entry() signature, kept for rolling deploys, overloads
    -- the one `createEntry` maps to, and PostGraphile exposes no overloaded function (not
    -- even with @omit on the other): the benchmark's own database has no previous release.
    DROP FUNCTION IF EXISTS create_entry(text, text, integer, text, text);
END
$setup$;
