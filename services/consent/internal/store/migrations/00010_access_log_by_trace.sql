-- An operator's look-up by trace id (ConsentOperatorService.LookupAccessByTrace)
-- finds the entries of one trace across every user's chain. Without this
-- index it would read the whole access log, which grows with every call.

-- +goose Up
CREATE INDEX access_log_by_trace ON access_log (trace_id);

-- +goose Down
DROP INDEX access_log_by_trace;
