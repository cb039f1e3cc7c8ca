-- CheckConsent reads a user's links at one bank (UserLinks) on every call a
-- service makes for that user. Without an index on both columns, SQLite,
-- which keeps no statistics, chose links_by_bank_consent (bank_id) and read
-- every link at the bank, so each check cost in proportion to the bank's
-- users (issue 15's profile: 41% of the consent service's CPU at 1,000
-- users). This index answers it from the user's own rows.

-- +goose Up
CREATE INDEX links_by_user_bank ON links (user_id, bank_id);

-- +goose Down
DROP INDEX links_by_user_bank;
