package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// TxOption tunes one InTx.
type TxOption func(*txOptions)

type txOptions struct {
	idempotent bool
}

// Idempotent marks a transaction that may be run twice with the effect of
// once: its write carries an idempotency key the table is unique on, or is
// naturally idempotent (an upsert to the same values, a delete). Only such
// a transaction is run again after its connection was lost, since a
// connection lost at COMMIT leaves unknown whether the first run committed.
func Idempotent() TxOption {
	return func(o *txOptions) { o.idempotent = true }
}

// Retry bounds for a lost connection: a PostgreSQL restart or failover, a
// backend terminated by an administrator, or a connection reset in
// between, which a fresh connection from the pool usually gets past.
const (
	lostConnectionAttempts = 3
	lostConnectionBackoff  = 100 * time.Millisecond
)

// retryLostConnection runs fn in a transaction, again when the database
// connection was lost (IsConnectionError), up to lostConnectionAttempts
// times in all, waiting a little longer each time, and never past ctx.
func (db *DB) retryLostConnection(ctx context.Context, fn func(*sql.Tx) error) error {
	wait := lostConnectionBackoff
	for attempt := 1; ; attempt++ {
		err := db.inTx(ctx, fn)
		if err == nil || attempt == lostConnectionAttempts || !IsConnectionError(err) {
			return err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}

// IsConnectionError reports whether err says the connection to the
// database was lost or could not be made, rather than that the statement
// failed: PostgreSQL shutting down or restarting (class 57P: admin
// shutdown, crash shutdown, cannot connect now), a connection exception
// (class 08), a failure to connect, or the connection closed or reset
// under the driver. A context that ended is not one.
func IsConnectionError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if pg, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pg.Code {
		case "57P01", "57P02", "57P03":
			return true
		}
		return len(pg.Code) == 5 && pg.Code[:2] == "08"
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, sql.ErrConnDone) || pgconn.SafeToRetry(err)
}

// unavailable is what InTx returns when the connection to the database was
// lost or could not be made (after the retries of an idempotent write): the
// driver's error, unchanged in its text and chain for the log, that also
// answers UNAVAILABLE (STORAGE_UNAVAILABLE) with a retry hint. Services
// pass an apierr error on as it is, so it reaches the server kit, whose
// mask logs the driver's text under an incident id and sends the caller
// only the reason, the hint and the id (platform/server/mask.go). A
// database that is restarting is no bug of the caller's, nor of the
// service's: INTERNAL would say both.
type unavailable struct{ err error }

// UnavailableRetry is the delay STORAGE_UNAVAILABLE's RetryInfo asks for:
// a PostgreSQL restart takes a few seconds, a failover about as long.
const UnavailableRetry = time.Second

// UnavailableMessage is STORAGE_UNAVAILABLE's message to the caller.
const UnavailableMessage = "the service's database could not be reached, so the call was not completed; retry shortly"

func (e unavailable) Error() string { return e.err.Error() }
func (e unavailable) Unwrap() error { return e.err }

// GRPCStatus makes e an apierr error (apierr.Reason reads it).
func (e unavailable) GRPCStatus() *status.Status {
	return status.Convert(apierr.New(commonv1.ErrorReason_ERROR_REASON_STORAGE_UNAVAILABLE, UnavailableMessage,
		apierr.WithRetryAfter(UnavailableRetry)))
}

// MarkUnavailable returns err marked as UNAVAILABLE (STORAGE_UNAVAILABLE)
// when [IsConnectionError] says the connection to the database was lost
// or could not be made; its text and chain are unchanged. Any other err,
// nil included, comes back as it is. InTx marks its errors itself; a
// store marks those of its reads outside a transaction, so that a service
// that passes apierr errors on and masks the rest answers a database
// restart UNAVAILABLE, not INTERNAL:
//
//	return fmt.Errorf("read idempotency key: %w", storage.MarkUnavailable(err))
func MarkUnavailable(err error) error {
	if !IsConnectionError(err) {
		return err
	}
	if _, done := errors.AsType[unavailable](err); done {
		return err
	}
	return unavailable{err: err}
}
