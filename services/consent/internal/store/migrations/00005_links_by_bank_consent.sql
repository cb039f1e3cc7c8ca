-- ResolveBankConsent: a bank's event names its consent id; a service asks
-- whose link it is. Not unique: the id is the bank's, and a link made
-- again may, at some banks, carry the consent id of the link it replaced.

-- +goose Up
CREATE INDEX links_by_bank_consent ON links (bank_id, bank_consent_id);

-- +goose Down
DROP INDEX links_by_bank_consent;
