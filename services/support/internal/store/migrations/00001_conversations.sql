-- The support service's conversation tables. One file for SQLite and
-- PostgreSQL: times are BIGINT microseconds since the Unix epoch (UTC),
-- enums are TEXT names, and an optional value that does not apply is NULL.

-- +goose Up

-- Support conversations: one row per conversation.
CREATE TABLE conversations (
  user_id              TEXT    NOT NULL,
  bank_id              TEXT    NOT NULL,
  -- The server-minted random id in users/{user}/conversations/{bank_id}~{conversation_id}.
  conversation_id      TEXT    NOT NULL,
  -- The product client that opened it: its events' webhooks go there.
  client_id            TEXT    NOT NULL,
  -- The consent link it was opened under, and that link's bank consent.
  link                 TEXT    NOT NULL,
  bank_consent_id      TEXT    NOT NULL,
  state                TEXT    NOT NULL,
  controller           TEXT    NOT NULL,
  -- The pending control request: NULL pending_by when none.
  pending_by           TEXT,
  pending_metadata     TEXT    NOT NULL,
  pending_time         BIGINT,
  agent_display_name   TEXT    NOT NULL,
  -- The bank's support case, once a handover opened one.
  case_id              TEXT,
  handovers            INTEGER NOT NULL,
  -- The assistant's state (JSON): its flow and the quick replies it offered.
  assistant_state      TEXT    NOT NULL,
  -- When the oldest user message the agent has not answered was sent.
  awaiting_agent_since BIGINT,
  last_seq             BIGINT  NOT NULL,
  version              BIGINT  NOT NULL,
  create_time          BIGINT  NOT NULL,
  update_time          BIGINT  NOT NULL,
  PRIMARY KEY (user_id, bank_id, conversation_id)
);
-- ListConversations, most recently updated first.
CREATE INDEX conversations_by_update ON conversations (user_id, update_time, bank_id, conversation_id);
-- The bank's events name the case.
CREATE UNIQUE INDEX conversations_by_case ON conversations (bank_id, case_id);
-- A revoked link's conversations.
CREATE INDEX conversations_by_link ON conversations (user_id, link);
-- The idle agent sweep.
CREATE INDEX conversations_by_awaiting ON conversations (awaiting_agent_since);

-- The messages of every conversation.
CREATE TABLE messages (
  user_id             TEXT    NOT NULL,
  bank_id             TEXT    NOT NULL,
  conversation_id     TEXT    NOT NULL,
  -- Orders the conversation's messages, from 1.
  seq                 BIGINT  NOT NULL,
  message_id          TEXT    NOT NULL,
  role                TEXT    NOT NULL,
  sender_display_name TEXT    NOT NULL,
  text                TEXT    NOT NULL,
  -- The user's id for the message; NULL on the others'.
  client_message_id   TEXT,
  postback_payload    TEXT,
  postback_title      TEXT,
  -- The quick replies offered (JSON array); '' when none.
  quick_replies       TEXT    NOT NULL,
  -- The bank's id of an agent's message; NULL on the others'.
  bank_message_id     TEXT,
  create_time         BIGINT  NOT NULL,
  PRIMARY KEY (user_id, bank_id, conversation_id, seq),
  FOREIGN KEY (user_id, bank_id, conversation_id) REFERENCES conversations (user_id, bank_id, conversation_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX messages_by_id ON messages (user_id, bank_id, conversation_id, message_id);
CREATE UNIQUE INDEX messages_by_client_id ON messages (user_id, bank_id, conversation_id, client_message_id);
CREATE UNIQUE INDEX messages_by_bank_id ON messages (user_id, bank_id, conversation_id, bank_message_id);
-- The retention sweep.
CREATE INDEX messages_by_create ON messages (create_time);

-- CreateConversation's idempotency keys, per user and client.
CREATE TABLE conversation_keys (
  user_id         TEXT   NOT NULL,
  client_id       TEXT   NOT NULL,
  idem_key        TEXT   NOT NULL,
  request_hash    TEXT   NOT NULL,
  bank_id         TEXT   NOT NULL,
  conversation_id TEXT   NOT NULL,
  create_time     BIGINT NOT NULL,
  PRIMARY KEY (user_id, client_id, idem_key),
  FOREIGN KEY (user_id, bank_id, conversation_id) REFERENCES conversations (user_id, bank_id, conversation_id) ON DELETE CASCADE
);
CREATE INDEX conversation_keys_by_create ON conversation_keys (create_time);

-- Who reads each bank's adapter event stream, and where it is: one
-- replica holds a bank's lease at a time, and the cursor is written with
-- each event's effect.
CREATE TABLE bank_event_leases (
  bank_id     TEXT   NOT NULL PRIMARY KEY,
  holder      TEXT   NOT NULL,
  lease_until BIGINT NOT NULL,
  event_cursor TEXT  NOT NULL
);

-- The bank's events for a case no conversation names yet: the bank may
-- send them (an agent joining) before the handoff that opened the case
-- has committed its case id. The handoff's transaction applies and
-- deletes them; the sweep deletes those no handoff claimed.
CREATE TABLE parked_case_events (
  bank_id      TEXT   NOT NULL,
  case_id      TEXT   NOT NULL,
  -- Orders a case's events as they arrived.
  n            BIGINT NOT NULL,
  -- The event, protojson of bankbridge.adapter.v1.StreamEventsResponse.
  event        TEXT   NOT NULL,
  receive_time BIGINT NOT NULL,
  PRIMARY KEY (bank_id, case_id, n)
);
CREATE INDEX parked_case_events_by_receive ON parked_case_events (receive_time);

-- +goose Down
DROP TABLE parked_case_events;
DROP TABLE bank_event_leases;
DROP TABLE conversation_keys;
DROP TABLE messages;
DROP TABLE conversations;
