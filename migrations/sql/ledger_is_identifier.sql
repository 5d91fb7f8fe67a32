-- The rule for an ownerId or a nonce, as graphql_ledger.ledger.identifier_problem states it:
-- 1 to 255 characters, none of them a control (Cc) or format (Cf) character or a surrogate
-- (Cs). PostgreSQL's regular expressions know no \p{Cf}, so the class is spelled out; it was
-- generated from Python's unicodedata (Unicode 14.0.0) by
--     python3 -c 'import sys, unicodedata as u; print(*(hex(c) for c in range(sys.maxunicode + 1) if u.category(chr(c)) in ("Cc", "Cf", "Cs")))'
-- with consecutive code points joined into ranges (tests/test_serving_role.py checks it).
-- CREATE OR REPLACE: CHECK constraints depend on it (0006 creates it).
CREATE OR REPLACE FUNCTION ledger_is_identifier(p_value text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT char_length(p_value) BETWEEN 1 AND 255
       AND p_value !~ '[\u0000-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uD800-\uDFFF\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]'
$$
