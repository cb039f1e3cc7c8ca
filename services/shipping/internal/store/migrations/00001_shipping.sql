-- The shipping service's tables. One file for SQLite and PostgreSQL: times
-- are BIGINT microseconds since the Unix epoch (UTC), enums are TEXT names,
-- and an optional value that does not apply is NULL.

-- +goose Up

-- The parcels users track: one row per user and parcel.
CREATE TABLE shipments (
  user_id                 TEXT    NOT NULL,
  -- The server-minted random id in users/{user}/shipments/{shipment_id}.
  shipment_id             TEXT    NOT NULL,
  -- Normalised (upper case, no spaces or hyphens).
  tracking_number         TEXT    NOT NULL,
  -- '' while the number fits several carriers, listed in
  -- carrier_candidates (comma-separated, sorted; '' when none).
  carrier                 TEXT    NOT NULL,
  carrier_detected        BOOLEAN NOT NULL,
  carrier_candidates      TEXT    NOT NULL,
  receipt                 TEXT,
  -- A partner's registration: the partner and the partner-scoped user id.
  partner                 TEXT,
  partner_user_id         TEXT,
  -- The product client the shipment's events go to.
  client_id               TEXT    NOT NULL,
  status                  TEXT    NOT NULL,
  substatus               TEXT    NOT NULL,
  signed_by               TEXT    NOT NULL,
  estimated_delivery_time BIGINT,
  -- The time of the checkpoint status comes from.
  status_time             BIGINT,
  -- When a carrier event for the parcel last arrived.
  last_event_time         BIGINT,
  -- last_event_time, or create_time before any: expiry counts from it.
  active_time             BIGINT  NOT NULL,
  create_time             BIGINT  NOT NULL,
  update_time             BIGINT  NOT NULL,
  PRIMARY KEY (user_id, shipment_id)
);
-- A user tracks a parcel once per carrier.
CREATE UNIQUE INDEX shipments_by_user_number ON shipments (user_id, tracking_number, carrier);
-- ListShipments: a user's shipments, newest first (read backwards).
CREATE INDEX shipments_by_create ON shipments (user_id, create_time, shipment_id);
-- A carrier's push: every shipment of a parcel, of every user.
CREATE INDEX shipments_by_number ON shipments (tracking_number, carrier);
-- Expiry.
CREATE INDEX shipments_by_activity ON shipments (active_time);
-- Opt-in revocations and reconcile: a user's registrations by one partner.
CREATE INDEX shipments_by_partner_user ON shipments (user_id, partner, partner_user_id);

-- The carriers' events, once per (carrier, event id), kept per parcel
-- (carrier, tracking number) whoever tracks it, while a shipment awaits
-- them: the newest 500 of each parcel.
CREATE TABLE tracking_events (
  carrier                 TEXT   NOT NULL,
  event_id                TEXT   NOT NULL,
  tracking_number         TEXT   NOT NULL,
  checkpoint_time         BIGINT NOT NULL,
  status                  TEXT   NOT NULL,
  substatus               TEXT   NOT NULL,
  carrier_status_code     TEXT   NOT NULL,
  carrier_message         TEXT   NOT NULL,
  -- NULL when the carrier did not say where.
  city                    TEXT,
  region                  TEXT,
  postal_code             TEXT,
  country_code            TEXT,
  signed_by               TEXT   NOT NULL,
  estimated_delivery_time BIGINT,
  receive_time            BIGINT NOT NULL,
  PRIMARY KEY (carrier, event_id)
);
CREATE INDEX tracking_events_by_parcel ON tracking_events (carrier, tracking_number, checkpoint_time, event_id);
CREATE INDEX tracking_events_by_number ON tracking_events (tracking_number);

-- The push ids (webhook-id) each carrier used, against replays.
CREATE TABLE carrier_pushes (
  carrier      TEXT   NOT NULL,
  push_id      TEXT   NOT NULL,
  receive_time BIGINT NOT NULL,
  PRIMARY KEY (carrier, push_id)
);
CREATE INDEX carrier_pushes_by_time ON carrier_pushes (receive_time);

-- The shipment the first request under each idempotency key answered
-- with: a product's keys per client and user (subject), a partner's per
-- partner (subject ''). They go with the shipment.
CREATE TABLE idempotency_keys (
  client_id       TEXT   NOT NULL,
  subject         TEXT   NOT NULL,
  idem_key        TEXT   NOT NULL,
  user_id         TEXT   NOT NULL,
  request_hash    TEXT   NOT NULL,
  shipment_id     TEXT   NOT NULL,
  -- The number as a partner sent it, for its answer; '' for a product's.
  tracking_number TEXT   NOT NULL,
  create_time     BIGINT NOT NULL,
  PRIMARY KEY (client_id, subject, idem_key),
  FOREIGN KEY (user_id, shipment_id) REFERENCES shipments (user_id, shipment_id) ON DELETE CASCADE
);
CREATE INDEX idempotency_keys_by_shipment ON idempotency_keys (user_id, shipment_id);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (create_time);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE carrier_pushes;
DROP TABLE tracking_events;
DROP TABLE shipments;
