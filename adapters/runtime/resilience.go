package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/protocol"
)

// Outcomes reported to the circuit breaker: a call that never reached the
// bank, or that the caller abandoned, says nothing about the bank's health.
var (
	errNotCounted = errors.New("not counted by the breaker")
	errBankFailed = errors.New("bank failed")
)

// retryAfterCredentials is the RetryInfo delay when the secret store did not
// give a credential.
const retryAfterCredentials = time.Second

// unaryInterceptor is the resilience layer of every unary call: breaker,
// bulkhead, rate limit, deadline, credentials, error mapping, response
// validation, and one retry of a safe read.
func (bc *bankClient) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	done, err := bc.breaker.Allow()
	if err != nil {
		return bc.breakerOpen(err)
	}
	// The bulkhead refuses rather than queues, like the rate limit: a
	// slow bank must not hold more than its share of callers for its
	// whole timeout.
	select {
	case bc.slots <- struct{}{}:
		defer func() { <-bc.slots }()
	default:
		done(errNotCounted)
		return bc.unavailable(fmt.Sprintf("%d calls to it are in flight already (bankbridge's limit for this bank)", cap(bc.slots)), retryAfterBusy)
	}
	if err := bc.reserve(); err != nil {
		done(errNotCounted)
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, bc.bank.Timeout)
	defer cancel()
	// Whose deadline bounds the call: when it is the caller's, shorter than
	// the bank's timeout, running out of it is no sign of a failing bank.
	callerDeadline, hasDeadline := ctx.Deadline()
	callDeadline, _ := callCtx.Deadline()
	callerBound := hasDeadline && callerDeadline.Equal(callDeadline)
	callCtx, err = bc.outgoing(callCtx)
	if err != nil {
		done(errNotCounted)
		return err
	}
	// The breaker counts the call once, by how it ended: a read answered
	// on its retry is a success, and a failure is not counted twice. It
	// thus sees the share of calls that failed their callers.
	for retried := false; ; retried = true {
		start := time.Now()
		err := invoker(callCtx, method, req, reply, cc, opts...)
		if err == nil {
			if err, outcome := bc.checkResponse(ctx, method, reply); err != nil {
				done(outcome)
				return err
			}
			done(nil)
			return nil
		}
		mapped, outcome := bc.mapError(ctx, method, callerBound, err)
		if retried || !bc.retryable(callCtx, method, err, time.Since(start)) {
			done(outcome)
			return mapped
		}
		timer := time.NewTimer(bc.bank.Retry.Backoff)
		select {
		case <-callCtx.Done():
			timer.Stop()
			done(outcome)
			return mapped
		case <-timer.C:
		}
		// The retry is one more call to the bank: within its rate limit.
		if bc.reserve() != nil {
			done(outcome)
			return mapped
		}
		if m, ok := reply.(proto.Message); ok {
			proto.Reset(m)
		}
	}
}

// retryAfterBusy is the RetryInfo delay when the bulkhead is full: calls
// in flight end within the bank's timeout, most much sooner.
const retryAfterBusy = 200 * time.Millisecond

// reserve takes a token from the bank's rate limit, or answers
// RATE_LIMITED. It reserves rather than waits: a caller is better served
// by a quick RATE_LIMITED with RetryInfo than by a queue.
func (bc *bankClient) reserve() error {
	now := time.Now()
	r := bc.limiter.ReserveN(now, 1)
	if r.OK() && r.DelayFrom(now) == 0 {
		return nil
	}
	retry := time.Second
	if r.OK() {
		retry = max(r.DelayFrom(now), time.Millisecond)
		r.CancelAt(now)
	}
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED,
		fmt.Sprintf("bankbridge's rate limit for bank %s is reached", bc.bank.ID),
		apierr.WithRetryAfter(retry))
}

// safeReads are the protocol's RPCs that only read, and so may be sent
// twice. Every other RPC writes (StartSca and VerifySca included: a
// second code check spends an attempt) and is never repeated here;
// writes carry an idempotency key for their callers' own retries.
var safeReads = map[string]bool{
	adapterv1.BankAdapterService_GetAdapterInfo_FullMethodName:     true,
	adapterv1.BankAdapterService_CheckHealth_FullMethodName:        true,
	adapterv1.BankAdapterService_ListAccounts_FullMethodName:       true,
	adapterv1.BankAdapterService_GetBalances_FullMethodName:        true,
	adapterv1.BankAdapterService_SyncTransactions_FullMethodName:   true,
	adapterv1.BankAdapterService_GetPurchaseDetails_FullMethodName: true,
	adapterv1.BankAdapterService_ListCards_FullMethodName:          true,
}

// retryMinBudget is the least time a retry must have left after its
// backoff, however quickly the first attempt failed.
const retryMinBudget = 50 * time.Millisecond

// retryable says whether a safe read that failed with err after took
// gets its one retry. gRPC's own retry policy (service config) is not
// used: it cannot tell an adapter's BANK_UNAVAILABLE from its other
// UNAVAILABLE answers, nor leave the attempt out when too little of the
// deadline is left for it, and its backoff is random.
func (bc *bankClient) retryable(callCtx context.Context, method string, err error, took time.Duration) bool {
	if bc.bank.Retry.Disabled || !safeReads[method] || callCtx.Err() != nil {
		return false
	}
	switch apierr.Reason(err) {
	case commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE:
	case commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED:
		// No answer from the adapter: only a failed transport (refused,
		// reset, closed by keepalive, GOAWAY), not a timeout.
		if status.Code(err) != codes.Unavailable {
			return false
		}
	default:
		return false
	}
	// The adapter's RetryInfo is advice for bankbridge's callers, which
	// every BANK_UNAVAILABLE carries; it does not rule out one quick retry.
	deadline, _ := callCtx.Deadline()
	left := time.Until(deadline) - bc.bank.Retry.Backoff
	return left > max(took, retryMinBudget)
}

// streamInterceptor gives a stream credentials, error mapping, and the
// checks of unary responses on each message; no deadline, rate limit nor
// breaker, since a stream lives long and is resumed by its caller.
func (bc *bankClient) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	streamCtx, err := bc.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	streamCtx, cancel := context.WithCancel(streamCtx)
	cs, err := streamer(streamCtx, desc, cc, method, opts...)
	if err != nil {
		cancel()
		mapped, _ := bc.mapError(ctx, method, true, err)
		return nil, mapped
	}
	return &checkedStream{ClientStream: cs, bc: bc, method: method, callerCtx: ctx, cancel: cancel}, nil
}

// checkedStream maps the errors and validates the messages of a stream.
type checkedStream struct {
	grpc.ClientStream
	bc        *bankClient
	method    string
	callerCtx context.Context
	cancel    context.CancelFunc
}

// RecvMsg returns the stream's next message that keeps the rules. A
// message that breaks the protocol's rules ends the stream as the bank's
// failure; one that shows an unmasked number is refused alone (counted and
// logged, see leak.go) and the stream reads on, so that one customer's
// record cannot stop every customer's events from the bank.
func (s *checkedStream) RecvMsg(m any) error {
	for {
		err := s.ClientStream.RecvMsg(m)
		switch {
		case errors.Is(err, io.EOF):
			s.cancel()
			return err
		case err != nil:
			s.cancel()
			if ctxErr := s.callerCtx.Err(); ctxErr != nil {
				// The caller ended the stream, by cancelling or by its deadline.
				return status.FromContextError(ctxErr).Err()
			}
			if _, ok := s.callerCtx.Deadline(); ok && status.Code(err) == codes.DeadlineExceeded && apierr.Info(err) == nil {
				// The caller's deadline, as the adapter's clock saw it a moment
				// before ours: a stream has no other.
				return status.Error(codes.DeadlineExceeded, "the caller's deadline ended the stream")
			}
			mapped, _ := s.bc.mapError(s.callerCtx, s.method, true, err)
			return mapped
		}
		msg, err := s.bc.validResponse(m)
		if err != nil {
			s.cancel()
			return err
		}
		if err := s.bc.checkLeaks(s.callerCtx, s.method, msg); err != nil {
			continue // refused; RecvMsg resets m before it fills it again
		}
		return nil
	}
}

// checkResponse holds a unary response to the protocol's rules, then to
// the masking rule (leak.go), and says how the breaker should count a
// refusal: a response outside the rules is the bank's failure; one that
// shows an unmasked number is refused without blaming the bank's health,
// since it is usually one record of one customer and must not cut every
// customer off the bank.
func (bc *bankClient) checkResponse(ctx context.Context, method string, reply any) (error, error) {
	msg, err := bc.validResponse(reply)
	if err != nil {
		return err, errBankFailed
	}
	if err := bc.checkLeaks(ctx, method, msg); err != nil {
		return err, errNotCounted
	}
	return nil, nil
}

// validResponse holds a response to the protocol's rules: one that breaks
// them is named by field path and rule only.
func (bc *bankClient) validResponse(reply any) (proto.Message, error) {
	msg, ok := reply.(proto.Message)
	if !ok {
		return nil, bc.unavailable("its adapter answered with something other than a protocol message", adapters.RetryAfterBankFailure)
	}
	if err := bc.validator.Validate(msg); err != nil {
		return nil, bc.unavailable("its adapter answered outside the protocol: "+protocol.DescribeViolations(err), adapters.RetryAfterBankFailure)
	}
	return msg, nil
}

// mapError turns what the adapter or the transport answered into what
// bankbridge's callers see, and says how the breaker should count it.
// callerBound says the call's deadline was the caller's own.
func (bc *bankClient) mapError(callerCtx context.Context, method string, callerBound bool, err error) (error, error) {
	if apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		// The adapter's own answer: its reason, not its words (answers.go).
		// Only its failures count against it, not business answers such as
		// NOT_FOUND.
		mapped := bc.fromAdapter(callerCtx, method, err)
		if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED) {
			return mapped, nil // the bank answered: it is not failing
		}
		switch status.Code(mapped) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss:
			return mapped, errBankFailed
		}
		return mapped, nil
	}
	if errors.Is(callerCtx.Err(), context.Canceled) {
		return status.Error(codes.Canceled, "call canceled by the caller"), errNotCounted
	}
	if status.Code(err) == codes.DeadlineExceeded {
		outcome := errBankFailed
		if callerBound {
			// The caller's deadline, shorter than the bank's timeout, ran
			// out: the bank may yet have been in time, so it is not blamed.
			outcome = errNotCounted
		}
		return bc.unavailable("it did not answer in time", adapters.RetryAfterBankFailure), outcome
	}
	// Never the adapter's or the transport's text: it may carry the bank's
	// raw answer.
	return bc.unavailable(fmt.Sprintf("the call failed (%s)", status.Code(err)), adapters.RetryAfterBankFailure), errBankFailed
}

func (bc *bankClient) unavailable(why string, retryAfter time.Duration) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
		fmt.Sprintf("bank %s is unavailable: %s", bc.bank.ID, why),
		apierr.WithRetryAfter(retryAfter))
}

// breakerOpen answers a call the breaker refused, with the time left until
// it lets a trial call through.
func (bc *bankClient) breakerOpen(err error) error {
	retry := time.Second
	if errors.Is(err, gobreaker.ErrOpenState) {
		opened := time.Unix(0, bc.openedAt.Load())
		retry = max(time.Until(opened.Add(bc.bank.Breaker.OpenFor)), 100*time.Millisecond)
	}
	return bc.unavailable("it kept failing, so calls are paused (circuit breaker open)", retry)
}

// outgoing returns ctx with the bank's current credentials as metadata and
// any credential metadata the caller set removed, keeping the rest of the
// caller's metadata (bankbridge-purpose, traceparent, ...).
func (bc *bankClient) outgoing(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromOutgoingContext(ctx)
	for k := range md {
		if strings.HasPrefix(k, adapters.CredentialMetadataPrefix) {
			delete(md, k)
		}
	}
	if bc.creds != nil {
		creds, err := bc.creds.BankCredential(ctx, bc.bank)
		if err != nil {
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE,
				fmt.Sprintf("the credentials of bank %s are unavailable", bc.bank.ID),
				apierr.WithRetryAfter(retryAfterCredentials))
		}
		if md == nil {
			md = metadata.MD{}
		}
		for k, v := range creds {
			k = strings.ToLower(k)
			if k == CredentialTLSCert || k == CredentialTLSKey {
				continue // the client certificate travels in the TLS handshake only
			}
			if !validMetadata(k, v) {
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE,
					fmt.Sprintf("a credential of bank %s cannot travel as gRPC metadata: key %q must be of [a-z0-9._-] and its value printable ASCII", bc.bank.ID, k),
					apierr.WithRetryAfter(retryAfterCredentials))
			}
			md.Set(adapters.CredentialMetadataPrefix+k, v)
		}
	}
	return metadata.NewOutgoingContext(ctx, md), nil
}

// validMetadata reports whether key and value can travel as gRPC metadata
// as they are: keys of [a-z0-9._-], values of printable ASCII (any bytes
// for keys ending in -bin).
func validMetadata(key, value string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.' {
			return false
		}
	}
	if strings.HasSuffix(key, "-bin") {
		return true
	}
	for i := range len(value) {
		if value[i] < 0x20 || value[i] > 0x7e {
			return false
		}
	}
	return true
}
