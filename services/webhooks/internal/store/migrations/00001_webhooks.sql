-- The webhooks service's tables. One file for SQLite and PostgreSQL: times
-- are BIGINT microseconds since the Unix epoch (UTC), enums are TEXT names,
-- lists are comma-separated, booleans are 0 or 1. No payload of a delivery
-- is kept beside it, and no response body anywhere.

-- +goose Up

-- A client's webhook endpoints. Their signing secrets are in Vault, at
-- bankbridge/webhooks/<endpoint_id>, never here.
CREATE TABLE endpoints (
  client_id                   TEXT   NOT NULL,
  endpoint_id                 TEXT   NOT NULL UNIQUE,
  url                         TEXT   NOT NULL,
  event_types                 TEXT   NOT NULL,
  description                 TEXT   NOT NULL,
  create_time                 BIGINT NOT NULL,
  secret_create_time          BIGINT NOT NULL,
  previous_secret_expire_time BIGINT,
  PRIMARY KEY (client_id, endpoint_id)
);
-- ListEndpoints: a client's endpoints, oldest first.
CREATE INDEX endpoints_by_client_create ON endpoints (client_id, create_time, endpoint_id);

-- The events of each client, kept for delivery and replay: thin payloads
-- (ids, types, names), as the bus carried them.
CREATE TABLE events (
  event_id   TEXT   PRIMARY KEY,
  client_id  TEXT   NOT NULL,
  event_type TEXT   NOT NULL,
  resource   TEXT   NOT NULL,
  event_time BIGINT NOT NULL,
  data       TEXT   NOT NULL
);
-- ReplayEvents: a client's events in order.
CREATE INDEX events_by_client_time ON events (client_id, event_time, event_id);

-- One event on its way to one endpoint.
CREATE TABLE deliveries (
  delivery_id       TEXT    PRIMARY KEY,
  client_id         TEXT    NOT NULL,
  endpoint_id       TEXT    NOT NULL,
  event_id          TEXT    NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
  event_type        TEXT    NOT NULL,
  state             TEXT    NOT NULL CHECK (state IN ('PENDING', 'SUCCEEDED', 'FAILED')),
  replay            INTEGER NOT NULL,
  create_time       BIGINT  NOT NULL,
  next_attempt_time BIGINT,
  deadline          BIGINT  NOT NULL,
  attempt_count     INTEGER NOT NULL,
  FOREIGN KEY (client_id, endpoint_id) REFERENCES endpoints (client_id, endpoint_id) ON DELETE CASCADE
);
-- The dispatcher: pending deliveries by when they are due.
CREATE INDEX deliveries_due ON deliveries (next_attempt_time) WHERE state = 'PENDING';
-- ListDeliveries: an endpoint's deliveries, newest first.
CREATE INDEX deliveries_by_endpoint ON deliveries (client_id, endpoint_id, create_time, delivery_id);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

-- Every attempt of a delivery: when, how long, the status code and how it
-- ended. Never a body.
CREATE TABLE delivery_attempts (
  delivery_id  TEXT    NOT NULL REFERENCES deliveries (delivery_id) ON DELETE CASCADE,
  attempt      INTEGER NOT NULL,
  attempt_time BIGINT  NOT NULL,
  duration_us  BIGINT  NOT NULL,
  http_status  INTEGER NOT NULL,
  outcome      TEXT    NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
);

-- The first answer to each request that carried an idempotency key.
CREATE TABLE idempotency_keys (
  client_id    TEXT   NOT NULL,
  idem_key     TEXT   NOT NULL,
  method       TEXT   NOT NULL,
  request_hash TEXT   NOT NULL,
  result       TEXT   NOT NULL,
  create_time  BIGINT NOT NULL,
  PRIMARY KEY (client_id, idem_key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE endpoints;
