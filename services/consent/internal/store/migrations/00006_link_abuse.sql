-- Linking abuse (issue 13): decoy links for logins the bank does not know,
-- the cap on links waiting for verification, and wrong two-factor codes
-- counted per user, bank and bank login across links. Defaults keep
-- existing links as they were: real, made before logins were hashed.

-- +goose Up

-- login_hash: HMAC-SHA256 of the bank login hint the link was made with,
-- under the service's login key from Vault; never the login itself.
-- decoy: the bank knows no customer by that login, so no code passes the
-- link's challenge; never shown to anyone.
ALTER TABLE links ADD COLUMN login_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE links ADD COLUMN decoy BOOLEAN NOT NULL DEFAULT FALSE;

-- A CreateLink between its check of the pending-link cap and the insert of
-- its link, while the bank starts the challenge: it holds a place under the
-- cap, so that calls made at once cannot all pass the check. start_key is
-- the call's idempotency key (its retries share the place); a place whose
-- call died is ignored after expire_time.
CREATE TABLE link_starts (
  user_id     TEXT   NOT NULL,
  bank_id     TEXT   NOT NULL,
  start_key   TEXT   NOT NULL,
  expire_time BIGINT NOT NULL,
  PRIMARY KEY (user_id, bank_id, start_key)
);

-- The codes of a link's challenge the bank is checking right now, one per
-- VerifyLink idempotency key: each took its attempt before the bank was
-- asked, so codes sent at once cannot try more than the attempts left, and
-- a retry with the same key waits for the first one's answer rather than
-- take another. The claim of a call that died lapses after claim_time
-- (its attempt stays spent).
CREATE TABLE sca_claims (
  user_id         TEXT   NOT NULL,
  link_id         TEXT   NOT NULL,
  idempotency_key TEXT   NOT NULL,
  claim_time      BIGINT NOT NULL,
  PRIMARY KEY (user_id, link_id, idempotency_key)
);

-- Two-factor codes tried per user, bank and login (login_hash, as in
-- links) in the current window, whatever link they were tried on; at the
-- limit, no code is taken and no link made until cooldown_until.
CREATE TABLE sca_failures (
  user_id        TEXT    NOT NULL,
  bank_id        TEXT    NOT NULL,
  login_hash     TEXT    NOT NULL,
  window_start   BIGINT  NOT NULL,
  failures       INTEGER NOT NULL,
  cooldown_until BIGINT  NOT NULL,
  PRIMARY KEY (user_id, bank_id, login_hash)
);

-- The challenge each bank started last, which a decoy link imitates: its
-- method, lifetime and attempts, and its text and page once two users were
-- shown the same (shared), so that no customer's own challenge text (a
-- phone number's last digits) is shown to anyone else.
CREATE TABLE bank_challenges (
  bank_id          TEXT    NOT NULL PRIMARY KEY,
  method           TEXT    NOT NULL,
  instruction      TEXT    NOT NULL,
  redirect_uri     TEXT    NOT NULL,
  lifetime_us      BIGINT  NOT NULL,
  expire_unit_us   BIGINT  NOT NULL,
  attempts_allowed INTEGER NOT NULL,
  user_reference   TEXT    NOT NULL,
  shared           BOOLEAN NOT NULL
);

-- +goose Down
DROP TABLE bank_challenges;
DROP TABLE sca_failures;
DROP TABLE sca_claims;
DROP TABLE link_starts;
ALTER TABLE links DROP COLUMN decoy;
ALTER TABLE links DROP COLUMN login_hash;
