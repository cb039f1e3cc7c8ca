-- A keyed write being answered right now (issue 14): a second call with
-- the same key waits for the first one's answer and replays it, instead of
-- racing it to the bank (which refuses the second StartSca or
-- ExtendConsent as the key's reuse, its validity being a moment later) or
-- to the challenge (where it would find the first's code claimed). holder
-- is the call holding the key; a hold whose call died is taken over after
-- expire_time.

-- +goose Up
CREATE TABLE idempotency_holds (
  user_id         TEXT   NOT NULL,
  operation       TEXT   NOT NULL,
  idempotency_key TEXT   NOT NULL,
  request_hash    TEXT   NOT NULL,
  holder          TEXT   NOT NULL,
  expire_time     BIGINT NOT NULL,
  PRIMARY KEY (user_id, operation, idempotency_key)
);

-- +goose Down
DROP TABLE idempotency_holds;
