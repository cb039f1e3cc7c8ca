-- Signed access log heads (issue 13): each user's chain head carries a
-- signature, by a Vault Transit key the database never holds, of the chain
-- up to signed_sequence (app.HeadMessage). signed_sequence equals sequence
-- when the head is signed, and lags it while entries appended during a
-- Vault outage await their signature. key_version is the Transit key
-- version that signed, which the signature also names. Existing heads
-- start unsigned (see the consent service's --access-log-sign-grace).

-- +goose Up
ALTER TABLE access_log_heads ADD COLUMN signed_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE access_log_heads ADD COLUMN key_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE access_log_heads ADD COLUMN signature TEXT NOT NULL DEFAULT '';
-- SignPendingHeads: the heads whose last entries await a signature, few
-- but for an outage, found without reading every user's head.
CREATE INDEX access_log_heads_unsigned ON access_log_heads (user_id) WHERE signed_sequence < sequence;

-- +goose Down
DROP INDEX access_log_heads_unsigned;
ALTER TABLE access_log_heads DROP COLUMN signature;
ALTER TABLE access_log_heads DROP COLUMN key_version;
ALTER TABLE access_log_heads DROP COLUMN signed_sequence;
