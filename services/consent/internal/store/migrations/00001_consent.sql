-- The consent service's tables. One file for SQLite and PostgreSQL: times
-- are BIGINT microseconds since the Unix epoch (UTC), enums are TEXT names,
-- lists are comma-separated names.

-- +goose Up

-- A user's link to a bank and the consent it carries.
CREATE TABLE links (
  user_id                TEXT    NOT NULL,
  link_id                TEXT    NOT NULL,
  bank_id                TEXT    NOT NULL,
  bank_display_name      TEXT    NOT NULL,
  state                  TEXT    NOT NULL CHECK (state IN ('RECEIVED', 'VALID', 'EXPIRED', 'REVOKED', 'REJECTED')),
  scopes                 TEXT    NOT NULL,
  purposes               TEXT    NOT NULL,
  expire_time            BIGINT  NOT NULL,
  create_time            BIGINT  NOT NULL,
  update_time            BIGINT  NOT NULL,
  verify_time            BIGINT,
  revoke_time            BIGINT,
  bank_consent_id        TEXT    NOT NULL,
  sca_method             TEXT    NOT NULL,
  sca_status             TEXT    NOT NULL,
  sca_attempts_remaining INTEGER NOT NULL,
  sca_failed_attempts    INTEGER NOT NULL,
  sca_expire_time        BIGINT  NOT NULL,
  sca_redirect_uri       TEXT    NOT NULL,
  sca_instruction        TEXT    NOT NULL,
  expiry_warn_time       BIGINT,
  PRIMARY KEY (user_id, link_id)
);
-- ListLinks: a user's links, newest first.
CREATE INDEX links_by_user_create ON links (user_id, create_time, link_id);
-- The sweep: VALID links by expiry, RECEIVED links by challenge expiry.
CREATE INDEX links_by_state_expire ON links (state, expire_time);
CREATE INDEX links_by_state_sca_expire ON links (state, sca_expire_time);
-- At most one VALID link per user and bank: renewing is linking again.
CREATE UNIQUE INDEX links_one_valid_per_bank ON links (user_id, bank_id) WHERE state = 'VALID';

-- A user's pseudonym at a bank (StartSca's user_reference): random, stable.
CREATE TABLE user_references (
  user_id   TEXT NOT NULL,
  bank_id   TEXT NOT NULL,
  reference TEXT NOT NULL UNIQUE,
  PRIMARY KEY (user_id, bank_id)
);

-- The first answer to each request that carried an idempotency key.
CREATE TABLE idempotency_keys (
  user_id            TEXT    NOT NULL,
  operation          TEXT    NOT NULL,
  idempotency_key    TEXT    NOT NULL,
  request_hash       TEXT    NOT NULL,
  link_id            TEXT    NOT NULL,
  error_reason       TEXT    NOT NULL,
  attempts_remaining INTEGER NOT NULL,
  create_time        BIGINT  NOT NULL,
  PRIMARY KEY (user_id, operation, idempotency_key)
);
CREATE INDEX idempotency_keys_by_create ON idempotency_keys (create_time);

-- Each user's access log: append-only, a hash chain per user.
CREATE TABLE access_log (
  user_id       TEXT   NOT NULL,
  sequence      BIGINT NOT NULL CHECK (sequence > 0),
  access_time   BIGINT NOT NULL,
  client_id     TEXT   NOT NULL,
  method        TEXT   NOT NULL,
  resource      TEXT   NOT NULL,
  purpose       TEXT   NOT NULL,
  scope         TEXT   NOT NULL,
  outcome       TEXT   NOT NULL,
  reason        TEXT   NOT NULL,
  trace_id      TEXT   NOT NULL,
  previous_hash TEXT   NOT NULL,
  hash          TEXT   NOT NULL,
  PRIMARY KEY (user_id, sequence)
);

-- The last entry of each user's chain: appends lock this row, so a user's
-- appends are serialised; the verifier compares it with the last entry, so
-- removing entries from the end is caught too.
CREATE TABLE access_log_heads (
  user_id  TEXT   NOT NULL PRIMARY KEY,
  sequence BIGINT NOT NULL,
  hash     TEXT   NOT NULL
);

-- Events written in the same transaction as the change they report, for a
-- relay to publish (transactional outbox).
CREATE TABLE outbox (
  event_id     TEXT   NOT NULL PRIMARY KEY,
  event_type   TEXT   NOT NULL,
  payload      TEXT   NOT NULL,
  create_time  BIGINT NOT NULL,
  publish_time BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (create_time) WHERE publish_time IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE access_log_heads;
DROP TABLE access_log;
DROP TABLE idempotency_keys;
DROP TABLE user_references;
DROP TABLE links;
