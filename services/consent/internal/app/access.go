package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// Outcome is whether an access was allowed. The names match
// bankbridge.consent.v1.AccessOutcome.
type Outcome int

// The outcomes.
const (
	OutcomeUnspecified Outcome = iota
	OutcomeAllowed
	OutcomeDenied
)

var outcomeNames = []string{"ACCESS_OUTCOME_UNSPECIFIED", "ACCESS_OUTCOME_ALLOWED", "ACCESS_OUTCOME_DENIED"}

// String returns the outcome's full enum name, e.g. "ACCESS_OUTCOME_ALLOWED".
func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return outcomeNames[0]
	}
	return outcomeNames[o]
}

// ParseOutcome is the inverse of String.
func ParseOutcome(name string) Outcome {
	return Outcome(max(0, slices.Index(outcomeNames, name)))
}

// GenesisHash is the previous_hash of a chain's first entry.
var GenesisHash = strings.Repeat("0", 64)

// AccessEntry is one entry of a user's access log. It never holds the data
// accessed.
type AccessEntry struct {
	User string
	// Sequence is the entry's place in the user's chain, from 1, no gaps.
	Sequence int64
	// AccessTime is when the access was decided, at microsecond precision.
	AccessTime time.Time
	ClientID   string
	// SubjectID is the pseudonymous id of the token's subject that made
	// the call; empty in entries recorded before subjects were.
	SubjectID string
	Method    string
	Resource  string
	Purpose   commonv1.Purpose
	Scope     commonv1.Scope
	Outcome   Outcome
	// Reason is, for a denial, the ErrorReason without its prefix.
	Reason  string
	TraceID string
	// Hash covers the fields above but User, and PreviousHash.
	Hash         string
	PreviousHash string
}

// chainDomain separates these hashes from any other SHA-256 use.
const chainDomain = "bankbridge.consent.v1.AccessLogEntry"

// ChainHash returns the hash of e: the lowercase hex SHA-256 of its
// canonical encoding. That is the line "bankbridge.consent.v1.AccessLogEntry"
// followed by the fields sequence, access_time, client_id, method, resource,
// purpose, scope, outcome, reason, trace_id, subject_id when it is not
// empty, and previous_hash, in this order, each as its length in bytes
// (decimal), a colon, its UTF-8 bytes and a newline. sequence is decimal;
// access_time is RFC 3339 in UTC with exactly six fractional digits
// (2026-01-02T03:04:05.000006Z); purpose, scope and outcome are their full
// enum value names (PURPOSE_ACCOUNT_INFORMATION, SCOPE_UNSPECIFIED,
// ACCESS_OUTCOME_DENIED). A user can recompute it from an AccessLogEntry
// alone.
//
// subject_id is left out when empty so that entries recorded before
// subjects were still verify; an entry whose subject_id was blanked has one
// field fewer in its encoding, so its hash no longer matches.
func ChainHash(e AccessEntry) string {
	h := sha256.New()
	h.Write([]byte(chainDomain + "\n"))
	fields := []string{
		strconv.FormatInt(e.Sequence, 10),
		e.AccessTime.UTC().Format("2006-01-02T15:04:05.000000Z"),
		e.ClientID,
		e.Method,
		e.Resource,
		e.Purpose.String(),
		e.Scope.String(),
		e.Outcome.String(),
		e.Reason,
		e.TraceID,
	}
	if e.SubjectID != "" {
		fields = append(fields, e.SubjectID)
	}
	for _, f := range append(fields, e.PreviousHash) {
		fmt.Fprintf(h, "%d:%s\n", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// chain returns e as the entry after head in its user's chain: with its
// sequence, previous_hash and hash.
func chain(head ChainHead, e AccessEntry) AccessEntry {
	e.Sequence = head.Sequence + 1
	e.PreviousHash = head.Hash
	if head.Sequence == 0 {
		e.PreviousHash = GenesisHash
	}
	e.Hash = ChainHash(e)
	return e
}

// Limits of what an access log entry records, whatever the caller sends:
// the log is kept for years and read by its user, so no field may grow it
// without bound.
const (
	// MaxResourceLen caps the resource name, in bytes.
	MaxResourceLen  = 256
	maxMethodLen    = 256
	maxClientIDLen  = 256
	maxSubjectIDLen = 128
	traceIDLen      = 32
)

// checkEntry refuses an entry the log must not hold, naming the field as
// RecordAccessRequest does.
func checkEntry(e AccessEntry) error {
	tooLong := func(field string, n int) error {
		return invalid("entry."+field, fmt.Sprintf("must be at most %d bytes", n), "string.max_bytes")
	}
	switch {
	case e.User == "":
		return invalid("user", "required", "required")
	case len(e.Resource) > MaxResourceLen:
		return tooLong("resource", MaxResourceLen)
	case len(e.Method) > maxMethodLen:
		return tooLong("method", maxMethodLen)
	case len(e.ClientID) > maxClientIDLen:
		return tooLong("client_id", maxClientIDLen)
	case len(e.SubjectID) > maxSubjectIDLen:
		return tooLong("subject_id", maxSubjectIDLen)
	case e.TraceID != "" && !isLowerHex(e.TraceID, traceIDLen):
		return invalid("entry.trace_id", "must be 32 lowercase hex digits, or empty", "string.pattern")
	case e.Outcome != OutcomeAllowed && e.Outcome != OutcomeDenied:
		return invalid("entry.outcome", "must be ACCESS_OUTCOME_ALLOWED or ACCESS_OUTCOME_DENIED", "enum.in")
	case e.Outcome == OutcomeAllowed && e.Reason != "":
		return invalid("entry.reason", "must be empty for an allowed access", "reason.allowed_empty")
	case e.Outcome == OutcomeDenied && apierr.ParseReason(e.Reason) == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED:
		return invalid("entry.reason", "must name the ErrorReason of the denial, e.g. CONSENT_REVOKED", "reason.denied_known")
	}
	return nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

// RecordAccess appends e to its user's access log, setting its sequence,
// previous_hash and hash, and its access time when unset, and returns it
// once it is committed. Appends for one user are serialised, so the chain
// never forks; appends from concurrent calls share one transaction (see
// [Config.AccessBatchSize]). When ctx ends before the batch holding e is
// written, e is left out and RecordAccess returns ctx's error.
func (s *Service) RecordAccess(ctx context.Context, e AccessEntry) (AccessEntry, error) {
	if e.AccessTime.IsZero() {
		e.AccessTime = s.now()
	}
	e.AccessTime = micro(e.AccessTime)
	if err := checkEntry(e); err != nil {
		return AccessEntry{}, err
	}
	appended, err := s.appender.append(ctx, e)
	if err != nil {
		return AccessEntry{}, fmt.Errorf("append to access log: %w", err)
	}
	return appended, nil
}

// ListAccessLogInput is what ListAccessLog needs.
type ListAccessLogInput struct {
	User      string
	Filter    AccessFilter
	PageSize  int
	PageToken string
}

// ListAccessLog returns one page of the user's access log, newest first,
// and the token of the next page ("" on the last).
func (s *Service) ListAccessLog(ctx context.Context, in ListAccessLogInput) ([]AccessEntry, string, error) {
	return pagetoken.ReadPage(s.cfg.PageTokens, accessLogList(in), in.PageSize, in.PageToken,
		func(after *pagetoken.Position, limit int) ([]AccessEntry, error) {
			var before int64 // 0: from the newest
			if after != nil {
				before = after.Seq
			}
			entries, err := s.store.AccessLog(ctx, in.User, in.Filter, before, limit)
			if err != nil {
				return nil, fmt.Errorf("list access log: %w", err)
			}
			return entries, nil
		},
		func(e AccessEntry) pagetoken.Position { return pagetoken.Position{Seq: e.Sequence} })
}

// ChainError says where a user's access log chain is broken.
type ChainError struct {
	User string
	// Sequence is the first entry found changed or missing.
	Sequence int64
	// Problem says what is wrong with it.
	Problem string
}

// Error names the sequence and the problem; the user is in the User field.
func (e *ChainError) Error() string {
	return fmt.Sprintf("access log chain broken at sequence %d: %s", e.Sequence, e.Problem)
}

// verifyBatch is how many entries VerifyChain reads at once.
const verifyBatch = 500

// VerifyChain checks the user's access log: sequences 1, 2, 3, ... without
// gaps, each entry's hash over its fields, each previous_hash equal to the
// hash before it, the last entry equal to the chain head, and the head's
// signature (see [HeadMessage]) over the chain up to the entry it covers.
// Entries after that one await their signature (Vault was down): they pass
// while none was recorded longer than Config.HeadSignGrace ago, and fail
// after, as does a head signed by no one, so a chain rewritten by someone
// without the signing key fails whatever they do to its head. It returns
// nil, a *ChainError naming the first broken sequence, or the error that
// kept it from reading the log or the signing key.
func (s *Service) VerifyChain(ctx context.Context, user string) error {
	head, err := s.store.AccessHead(ctx, user)
	if err != nil {
		return fmt.Errorf("read chain head: %w", err)
	}
	w := walk{user: user, want: 1, prev: GenesisHash}
	var (
		signedHash string    // of the entry the signature covers
		oldest     time.Time // of the entries after it
	)
	for {
		batch, err := s.store.AccessChain(ctx, user, w.want-1, verifyBatch)
		if err != nil {
			return fmt.Errorf("read access log: %w", err)
		}
		for _, e := range batch {
			if err := w.next(e); err != nil {
				return err
			}
			switch {
			case e.Sequence == head.Signed.Sequence:
				signedHash = e.Hash
			case e.Sequence > head.Signed.Sequence && (oldest.IsZero() || e.AccessTime.Before(oldest)):
				oldest = e.AccessTime
			}
		}
		if len(batch) < verifyBatch {
			break
		}
	}
	if err := w.end(head); err != nil {
		return err
	}
	switch sig := head.Signed; {
	case head.Sequence == 0:
		return nil
	case sig.Sequence < 0 || sig.Sequence > head.Sequence:
		return &ChainError{User: user, Sequence: head.Sequence,
			Problem: fmt.Sprintf("the head's signature claims to cover sequence %d, which is not in the chain", sig.Sequence)}
	case sig.Sequence > 0:
		if err := s.checkSignature(ctx, user, sig, signedHash); err != nil {
			return err
		}
	}
	return s.unsignedTooLong(user, head, oldest)
}

// VerifyAllChains runs VerifyChain for every user with an access log and
// returns every *ChainError found, joined, or the first error that kept it
// from reading.
func (s *Service) VerifyAllChains(ctx context.Context) error {
	var broken []error
	after := ""
	for {
		users, err := s.store.AccessUsers(ctx, after, verifyBatch)
		if err != nil {
			return fmt.Errorf("list access log users: %w", err)
		}
		for _, u := range users {
			if err := s.VerifyChain(ctx, u); err != nil {
				if _, ok := errors.AsType[*ChainError](err); !ok {
					return err
				}
				broken = append(broken, err)
			}
		}
		if len(users) < verifyBatch {
			return errors.Join(broken...)
		}
		after = users[len(users)-1]
	}
}
