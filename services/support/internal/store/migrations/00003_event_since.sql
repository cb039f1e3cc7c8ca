-- Where a bank's event stream resumes when no cursor can be used: before
-- the first event was applied (an empty cursor would mean "from now on",
-- losing what the bank sent while the stream was down), or after the bank
-- refused the stored cursor. Microseconds since the Unix epoch: when the
-- lease was first taken, then the event time of the last event applied;
-- 0 when unknown (rows from before this migration).

-- +goose Up
ALTER TABLE bank_event_leases ADD COLUMN event_since BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE bank_event_leases DROP COLUMN event_since;
