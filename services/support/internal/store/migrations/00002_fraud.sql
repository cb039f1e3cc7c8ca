-- The support service's fraud tables: fraud reports, fraud alerts and the
-- card operations' state. One file for SQLite and PostgreSQL: times are
-- BIGINT microseconds since the Unix epoch (UTC), enums are TEXT names,
-- and an optional value that does not apply is NULL.

-- +goose Up

-- Fraud reports: one row per report, delivered to the bank through the
-- outbox.
CREATE TABLE fraud_reports (
  user_id           TEXT    NOT NULL,
  bank_id           TEXT    NOT NULL,
  -- The server-minted random id in users/{user}/fraudReports/{bank_id}~{report_id}.
  report_id         TEXT    NOT NULL,
  -- The product client that filed it.
  client_id         TEXT    NOT NULL,
  -- The consent link it was filed under, and that link's bank consent.
  link              TEXT    NOT NULL,
  bank_consent_id   TEXT    NOT NULL,
  -- The bank's ids: the account, and the transaction and card when named.
  account_id        TEXT    NOT NULL,
  transaction_id    TEXT,
  category          TEXT    NOT NULL,
  -- The user's words.
  description       TEXT    NOT NULL,
  block_card        BOOLEAN NOT NULL,
  card_id           TEXT,
  status            TEXT    NOT NULL,
  card_block_status TEXT    NOT NULL,
  -- The bank's case, once the bank has the report.
  case_id           TEXT,
  create_time       BIGINT  NOT NULL,
  update_time       BIGINT  NOT NULL,
  PRIMARY KEY (user_id, bank_id, report_id)
);
-- ListFraudReports, newest first.
CREATE INDEX fraud_reports_by_create ON fraud_reports (user_id, create_time, bank_id, report_id);
-- The bank's case updates name the case.
CREATE UNIQUE INDEX fraud_reports_by_case ON fraud_reports (bank_id, case_id);
-- A revoked link's reports.
CREATE INDEX fraud_reports_by_link ON fraud_reports (user_id, link);

-- CreateFraudReport's idempotency keys, per user and client.
CREATE TABLE fraud_report_keys (
  user_id      TEXT   NOT NULL,
  client_id    TEXT   NOT NULL,
  idem_key     TEXT   NOT NULL,
  request_hash TEXT   NOT NULL,
  bank_id      TEXT   NOT NULL,
  report_id    TEXT   NOT NULL,
  create_time  BIGINT NOT NULL,
  PRIMARY KEY (user_id, client_id, idem_key),
  FOREIGN KEY (user_id, bank_id, report_id) REFERENCES fraud_reports (user_id, bank_id, report_id) ON DELETE CASCADE
);
CREATE INDEX fraud_report_keys_by_create ON fraud_report_keys (create_time);

-- A bank's news of a case that came before the report's delivery stored
-- the case (the bank announces a case as it opens it): the delivery reads
-- and deletes it. Updates of cases no report names go with the sweep.
CREATE TABLE fraud_case_updates (
  bank_id         TEXT   NOT NULL,
  case_id         TEXT   NOT NULL,
  bank_consent_id TEXT   NOT NULL,
  status          TEXT   NOT NULL,
  create_time     BIGINT NOT NULL,
  PRIMARY KEY (bank_id, case_id)
);
CREATE INDEX fraud_case_updates_by_create ON fraud_case_updates (create_time);

-- Fraud alerts the banks raised: one row per alert, for the user whose
-- consent it came under.
CREATE TABLE fraud_alerts (
  user_id          TEXT    NOT NULL,
  bank_id          TEXT    NOT NULL,
  -- The bank's id in users/{user}/alerts/{bank_id}~{alert_id}.
  alert_id         TEXT    NOT NULL,
  -- The product the user linked the bank through: the alert's webhooks go there.
  client_id        TEXT    NOT NULL,
  link             TEXT    NOT NULL,
  bank_consent_id  TEXT    NOT NULL,
  account_id       TEXT    NOT NULL,
  transaction_id   TEXT,
  card_id          TEXT,
  -- The amount at stake, exact; NULL currency when none.
  amount_currency  TEXT,
  amount_units     BIGINT,
  amount_nanos     INTEGER,
  merchant_name    TEXT    NOT NULL,
  -- The bank's explanation, its digit runs masked.
  description      TEXT    NOT NULL,
  activity_time    BIGINT  NOT NULL,
  severity         TEXT    NOT NULL,
  state            TEXT    NOT NULL,
  response         TEXT,
  acknowledge_time BIGINT,
  create_time      BIGINT  NOT NULL,
  PRIMARY KEY (user_id, bank_id, alert_id)
);
-- A bank's alert is stored once, whoever it names.
CREATE UNIQUE INDEX fraud_alerts_by_bank_alert ON fraud_alerts (bank_id, alert_id);
-- ListAlerts, newest first.
CREATE INDEX fraud_alerts_by_create ON fraud_alerts (user_id, create_time, bank_id, alert_id);
-- A revoked link's alerts.
CREATE INDEX fraud_alerts_by_link ON fraud_alerts (user_id, link);

-- The card operations' idempotency keys (block, start and verify an
-- unblock), per user and client.
CREATE TABLE card_keys (
  user_id      TEXT   NOT NULL,
  client_id    TEXT   NOT NULL,
  operation    TEXT   NOT NULL,
  idem_key     TEXT   NOT NULL,
  request_hash TEXT   NOT NULL,
  create_time  BIGINT NOT NULL,
  PRIMARY KEY (user_id, client_id, operation, idem_key)
);
CREATE INDEX card_keys_by_create ON card_keys (create_time);

-- The unblock challenge running for each card: the bank's challenge id
-- stays here, never with the client.
CREATE TABLE card_unblocks (
  user_id          TEXT    NOT NULL,
  bank_id          TEXT    NOT NULL,
  card_id          TEXT    NOT NULL,
  challenge_id     TEXT    NOT NULL,
  method           TEXT    NOT NULL,
  challenge_text   TEXT    NOT NULL,
  expire_time      BIGINT  NOT NULL,
  attempts_allowed INTEGER NOT NULL,
  create_time      BIGINT  NOT NULL,
  PRIMARY KEY (user_id, bank_id, card_id)
);

-- +goose Down
DROP TABLE card_unblocks;
DROP TABLE card_keys;
DROP TABLE fraud_alerts;
DROP TABLE fraud_case_updates;
DROP TABLE fraud_report_keys;
DROP TABLE fraud_reports;
