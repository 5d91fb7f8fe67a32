-- What the serving role (ledger_serving) may do in this database, set again by every
-- `graphql-ledger migrate`: read the ledger's tables, and write only by calling
-- create_entry(), which runs as the owner. Revoking what it must not have makes a second
-- run converge on this, whatever was granted by hand.
REVOKE ALL ON TABLE entries, balances, operation_rules, alembic_version
    FROM PUBLIC, ledger_serving;
GRANT SELECT ON TABLE entries, balances, operation_rules, alembic_version TO ledger_serving;
GRANT EXECUTE ON FUNCTION create_entry(text, text, text),
    create_entry(text, text, integer, text, text) TO ledger_serving;
