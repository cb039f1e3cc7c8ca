-- The client (product) each link was created through, whose webhooks get
-- the link's events; links created before keep '' and reach no webhook.
-- Events now go through the platform's outbox (events_outbox, migrated by
-- platform/events): the consent service's own outbox table, whose rows
-- were never sent, goes.

-- +goose Up
ALTER TABLE links ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
DROP TABLE outbox;

-- +goose Down
CREATE TABLE outbox (
  event_id     TEXT   NOT NULL PRIMARY KEY,
  event_type   TEXT   NOT NULL,
  payload      TEXT   NOT NULL,
  create_time  BIGINT NOT NULL,
  publish_time BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (create_time) WHERE publish_time IS NULL;
ALTER TABLE links DROP COLUMN client_id;
