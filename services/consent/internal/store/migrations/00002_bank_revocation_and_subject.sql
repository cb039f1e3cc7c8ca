-- A link the bank revoked (issue 8), and the pseudonymous subject of each
-- access log entry. Defaults keep existing rows as they were: links revoked
-- by their users, entries recorded without a subject (their hashes cover
-- no subject_id, so they still verify).

-- +goose Up
ALTER TABLE links ADD COLUMN revoked_by_bank BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE access_log ADD COLUMN subject_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE access_log DROP COLUMN subject_id;
ALTER TABLE links DROP COLUMN revoked_by_bank;
