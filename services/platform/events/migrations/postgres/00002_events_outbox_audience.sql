-- An event that reaches many users at once (Event.Audience) lists its
-- recipients' resources here, one per line; '' for every other event.

-- +goose Up
ALTER TABLE events_outbox ADD COLUMN audience TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE events_outbox DROP COLUMN audience;
