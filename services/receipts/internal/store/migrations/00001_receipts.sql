-- The receipts service's tables. One file for SQLite and PostgreSQL: times
-- are BIGINT microseconds since the Unix epoch (UTC), enums are TEXT names,
-- and a value that does not apply is NULL (so unique keys hold only among
-- the rows it applies to). content is BYTEA, which SQLite keeps as the BLOB
-- it is given.

-- +goose Up

-- Every version of every receipt. A row's content never changes: an
-- amendment is a new row naming the one it amends; only the match columns
-- are set, once, when the receipt is matched.
CREATE TABLE receipts (
  user_id            TEXT    NOT NULL,
  -- The server-minted random id in users/{user}/receipts/{receipt_id}.
  receipt_id         TEXT    NOT NULL,
  -- receipt_id of version 1: every version of a receipt shares it.
  chain_id           TEXT    NOT NULL,
  version            INTEGER NOT NULL,
  -- receipt_id of the version this one amends; NULL for version 1.
  amends             TEXT,
  -- A partner's receipt: the partner, the partner-scoped user id it was
  -- sent to, and the partner's own id for it.
  partner            TEXT,
  partner_user_id    TEXT,
  partner_receipt_id TEXT,
  -- A card issuer's receipt: the bank, the consent link it was read
  -- under, and the transaction it describes.
  bank_id            TEXT,
  link               TEXT,
  source_transaction TEXT,
  -- The product client the receipt's events go to.
  client_id          TEXT    NOT NULL,
  -- The merchant name as merchant filters compare it (app.MerchantKey).
  merchant_key       TEXT    NOT NULL,
  purchase_time      BIGINT  NOT NULL,
  -- The content: the deterministic protobuf encoding of the contract's
  -- Receipt without its output-only fields.
  content            BYTEA   NOT NULL,
  content_hash       TEXT    NOT NULL,
  match_transaction  TEXT,
  match_confidence   TEXT,
  match_time         BIGINT,
  create_time        BIGINT  NOT NULL,
  PRIMARY KEY (user_id, receipt_id)
);
-- A partner's receipt_id is unique per partner and user.
CREATE UNIQUE INDEX receipts_by_partner_receipt ON receipts (user_id, partner, partner_receipt_id);
-- A version is amended at most once: the latest has no row amending it.
CREATE UNIQUE INDEX receipts_by_amends ON receipts (user_id, amends);
-- One issuer receipt per transaction.
CREATE UNIQUE INDEX receipts_by_source ON receipts (user_id, source_transaction);
-- ListReceipts: a user's receipts, newest purchase first (read backwards).
CREATE INDEX receipts_by_purchase ON receipts (user_id, purchase_time, receipt_id);
-- ListReceipts filtered by merchant.
CREATE INDEX receipts_by_merchant ON receipts (user_id, merchant_key, purchase_time, receipt_id);
-- ListReceipts filtered by transaction.
CREATE INDEX receipts_by_match ON receipts (user_id, match_transaction);
-- DeleteReceipt: every version of one.
CREATE INDEX receipts_by_chain ON receipts (user_id, chain_id);
-- Reconcile and opt-in revocations: a user's receipts from one partner.
CREATE INDEX receipts_by_partner_user ON receipts (user_id, partner, partner_user_id);
-- A link that ended: the issuer receipts read under it.
CREATE INDEX receipts_by_link ON receipts (user_id, link);
-- Retention.
CREATE INDEX receipts_by_purchase_time ON receipts (purchase_time);

-- Receipts waiting to be matched to a card transaction.
CREATE TABLE match_jobs (
  user_id    TEXT    NOT NULL,
  receipt_id TEXT    NOT NULL,
  attempts   INTEGER NOT NULL,
  due        BIGINT  NOT NULL,
  deadline   BIGINT  NOT NULL,
  PRIMARY KEY (user_id, receipt_id),
  FOREIGN KEY (user_id, receipt_id) REFERENCES receipts (user_id, receipt_id) ON DELETE CASCADE
);
CREATE INDEX match_jobs_by_due ON match_jobs (due);

-- The first answer to each partner request that carried an idempotency key.
CREATE TABLE idempotency_keys (
  partner             TEXT    NOT NULL,
  idem_key            TEXT    NOT NULL,
  user_id             TEXT    NOT NULL,
  partner_user_id     TEXT    NOT NULL,
  request_hash        TEXT    NOT NULL,
  partner_receipt_id  TEXT    NOT NULL,
  version             INTEGER NOT NULL,
  receipt_create_time BIGINT  NOT NULL,
  create_time         BIGINT  NOT NULL,
  PRIMARY KEY (partner, idem_key)
);
CREATE INDEX idempotency_keys_by_user ON idempotency_keys (user_id, partner, partner_user_id);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (create_time);

-- Card transactions whose issuer was asked for purchase details and gave
-- none (or none that added up), so they are not asked about again.
CREATE TABLE issuer_misses (
  user_id          TEXT   NOT NULL,
  transaction_name TEXT   NOT NULL,
  check_time       BIGINT NOT NULL,
  PRIMARY KEY (user_id, transaction_name)
);
CREATE INDEX issuer_misses_by_time ON issuer_misses (check_time);

-- When each user's issuer receipts were last synced.
CREATE TABLE issuer_syncs (
  user_id   TEXT   PRIMARY KEY,
  sync_time BIGINT NOT NULL
);
CREATE INDEX issuer_syncs_by_time ON issuer_syncs (sync_time);

-- +goose Down
DROP TABLE issuer_syncs;
DROP TABLE issuer_misses;
DROP TABLE idempotency_keys;
DROP TABLE match_jobs;
DROP TABLE receipts;
