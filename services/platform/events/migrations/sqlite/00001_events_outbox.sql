-- The transactional outbox (platform/events): events written in the same
-- transaction as the change they report, for the relay to publish. The
-- same table on SQLite and PostgreSQL but for how seq is drawn, the one
-- thing the two dialects cannot write alike; every query is shared.
-- SQLite: seq is the rowid, assigned in commit order (one writer at a time).
-- Times are BIGINT microseconds since the Unix epoch (UTC).

-- +goose Up
CREATE TABLE events_outbox (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id     TEXT    NOT NULL UNIQUE,
  user_id      TEXT    NOT NULL,
  event_type   TEXT    NOT NULL,
  source       TEXT    NOT NULL,
  client_id    TEXT    NOT NULL,
  resource     TEXT    NOT NULL,
  event_time   BIGINT  NOT NULL,
  data         TEXT    NOT NULL,
  create_time  BIGINT  NOT NULL,
  publish_time BIGINT
);
-- The relay reads what is left to publish in seq order ...
CREATE INDEX events_outbox_unpublished ON events_outbox (seq) WHERE publish_time IS NULL;
-- ... and prunes what was published before the retention.
CREATE INDEX events_outbox_published ON events_outbox (publish_time) WHERE publish_time IS NOT NULL;

-- +goose Down
DROP TABLE events_outbox;
