-- What the serving role (ledger_serving) may do in this database, set again by every
-- `graphql-ledger migrate`: read the ledger's tables, and write only by calling the ledger's
-- write functions, which run as the owner; reads may call the two that compute what holds
-- reserve and what has lapsed now. Revoking what it must not have makes a second run converge on this, whatever
-- was granted by hand.
REVOKE ALL ON TABLE entries, balances, holds, operation_rules, alembic_version,
    ledger_installed_functions, events, ledger_settings, balance_alerts, grants, grant_uses,
    ledger_watches, ledger_watchers
    FROM PUBLIC, ledger_serving;
GRANT SELECT ON TABLE entries, balances, holds, operation_rules, alembic_version, events,
    ledger_settings, balance_alerts, grants, grant_uses, ledger_watches, ledger_watchers
    TO ledger_serving;
GRANT EXECUTE ON FUNCTION create_entry(text, text, text, integer, jsonb, timestamptz),
    create_entry(text, text, integer, text, text),
    reserve_credits(text, text, text, integer, integer, jsonb),
    capture_hold(bigint, integer, jsonb, text, text[]),
    release_hold(bigint, text, text[]),
    refund_entry(bigint, text, jsonb),
    ledger_expire_grants(integer),
    ledger_watch(text, text[]),
    ledger_unwatch(text, text[]),
    set_balance_alert(text, integer),
    ledger_configure_events(boolean, integer),
    ledger_claim_events(integer),
    ledger_claim_following(text[], integer),
    ledger_record_attempts(text[], bigint[], text[], timestamptz[], text[]),
    ledger_prune_events(timestamptz, integer),
    ledger_resend_events(bigint[]),
    ledger_held(text, timestamptz),
    ledger_lapsed(text, timestamptz),
    ledger_lapsed_at(text, timestamptz),
    ledger_grants_at(text, timestamptz),
    ledger_grants(text, timestamptz, boolean),
    ledger_expiring_within(text, timestamptz, integer),
    ledger_hold_status(text, timestamptz, timestamptz) TO ledger_serving;
