package main

// Issue 14's fault row "duplicate concurrent writes with one idempotency
// key", through the consent service's gRPC server on SQLite and
// PostgreSQL, with the sandbox bank served remotely and slowed down so
// that the calls overlap: every write RPC that takes a key gives every
// caller the same answer, the bank is asked once, and a code takes one
// attempt however many calls carry it.

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// dupCalls is how many calls with one key are made at once.
const dupCalls = 8

// dupAnswer is what one caller got: the response, or the status on the
// wire.
type dupAnswer struct {
	resp   proto.Message
	err    error
	status []byte
}

func (a dupAnswer) String() string {
	if a.err != nil {
		return "error " + apierr.ReasonString(apierr.Reason(a.err))
	}
	if l, ok := a.resp.(interface{ GetLink() *consentv1.Link }); ok {
		return l.GetLink().GetName() + " " + l.GetLink().GetState().String() + " " + l.GetLink().GetSca().GetStatus().String()
	}
	return "response"
}

// atOnce makes n calls of call at once and fails the test unless every
// caller got the same answer, which it returns.
func atOnce[R proto.Message](t *testing.T, what string, n int, call func() (R, error)) dupAnswer {
	t.Helper()
	answers := make([]dupAnswer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			<-start
			resp, err := call()
			answers[i] = dupAnswer{resp: resp, err: err}
			if err != nil {
				answers[i].resp, answers[i].status = nil, statusBytes(t, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for i, a := range answers[1:] {
		if !bytes.Equal(a.status, answers[0].status) || (a.err == nil) != (answers[0].err == nil) ||
			(a.err == nil && !proto.Equal(a.resp, answers[0].resp)) {
			t.Errorf("%s: call %d got %s, call 0 got %s", what, i+1, a, answers[0])
		}
	}
	return answers[0]
}

// dupDatabases are the consent service's flags for each database it runs on.
var dupDatabases = map[string]func(t *testing.T) []string{
	"sqlite": func(*testing.T) []string { return nil },
	"postgres": func(t *testing.T) []string {
		url := os.Getenv(storagetest.PostgresURLEnv)
		if url == "" {
			t.Skipf("%s is not set: no PostgreSQL to run on", storagetest.PostgresURLEnv)
		}
		return []string{"--database-url=" + storagetest.PostgresDatabase(t, url)}
	},
}

func TestCallsAtOnceWithOneKeyGetOneAnswer(t *testing.T) {
	t.Parallel()
	for name, args := range dupDatabases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, args(t)...)
			// Every bank call takes a while, so the calls overlap there.
			e.bank.bankDelay.Store(int64(100 * time.Millisecond))
			e.bank.verifyDelay.Store(int64(100 * time.Millisecond))
			const user = "dup"

			createKey := randomKey(t)
			a := atOnce(t, "CreateLink", dupCalls, func() (*consentv1.CreateLinkResponse, error) {
				return e.createLinkAs(user, "alice", createKey)
			})
			if a.err != nil {
				t.Fatalf("CreateLink: %v", a.err)
			}
			l := a.resp.(*consentv1.CreateLinkResponse).GetLink()
			if n := e.bank.starts.Load(); n != 1 {
				t.Errorf("the bank was asked to start %d challenges, want 1", n)
			}
			links, err := e.consent.ListLinks(e.as(t, user), &consentv1.ListLinksRequest{Parent: "users/" + user})
			if err != nil || len(links.GetLinks()) != 1 {
				t.Errorf("the user has %d links (%v), want 1", len(links.GetLinks()), err)
			}

			// A wrong code: one attempt spent, one code checked by the bank.
			verify := func(code, key string) func() (*consentv1.VerifyLinkResponse, error) {
				return func() (*consentv1.VerifyLinkResponse, error) {
					return e.consent.VerifyLink(e.asCtx(user), &consentv1.VerifyLinkRequest{Name: l.GetName(), Code: code, IdempotencyKey: key})
				}
			}
			a = atOnce(t, "VerifyLink with a wrong code", dupCalls, verify("000000", randomKey(t)))
			if !apierr.Is(a.err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED) ||
				apierr.Info(a.err).GetMetadata()["attempts_remaining"] != "4" {
				t.Errorf("VerifyLink with a wrong code: %s (%v), want SCA_FAILED with 4 attempts left", a, a.err)
			}
			if n := e.bank.verifies.Load(); n != 1 {
				t.Errorf("the bank checked %d codes, want 1", n)
			}
			got, err := e.consent.GetLink(e.as(t, user), &consentv1.GetLinkRequest{Name: l.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			if left := got.GetLink().GetSca().GetAttemptsRemaining(); left != 4 {
				t.Errorf("%d attempts left after one wrong code sent %d times, want 4", left, dupCalls)
			}

			a = atOnce(t, "VerifyLink with the code", dupCalls, verify(sandbox.Code, randomKey(t)))
			if a.err != nil || a.resp.(*consentv1.VerifyLinkResponse).GetLink().GetState() != consentv1.ConsentState_CONSENT_STATE_VALID {
				t.Fatalf("VerifyLink with the code: %s (%v), want VALID", a, a.err)
			}
			if n := e.bank.verifies.Load(); n != 2 {
				t.Errorf("the bank checked %d codes in all, want 2", n)
			}

			reconfirmKey := randomKey(t)
			a = atOnce(t, "ReconfirmLink", dupCalls, func() (*consentv1.ReconfirmLinkResponse, error) {
				return e.consent.ReconfirmLink(e.asCtx(user), &consentv1.ReconfirmLinkRequest{Name: l.GetName(), IdempotencyKey: reconfirmKey})
			})
			if a.err != nil {
				t.Errorf("ReconfirmLink: %v", a.err)
			}
			if n := e.bank.extends.Load(); n != 1 {
				t.Errorf("the bank was asked to extend the consent %d times, want 1", n)
			}

			revokeKey := randomKey(t)
			a = atOnce(t, "RevokeLink", dupCalls, func() (*consentv1.RevokeLinkResponse, error) {
				return e.consent.RevokeLink(e.asCtx(user), &consentv1.RevokeLinkRequest{Name: l.GetName(), IdempotencyKey: revokeKey})
			})
			if a.err != nil || a.resp.(*consentv1.RevokeLinkResponse).GetLink().GetState() != consentv1.ConsentState_CONSENT_STATE_REVOKED {
				t.Errorf("RevokeLink: %s (%v), want REVOKED", a, a.err)
			}

			// Another request under a key in use is refused, the first
			// call answered as if alone.
			otherKey := randomKey(t)
			first := make(chan error, 1)
			go func() {
				_, err := e.createLinkAs(user, "alice", otherKey)
				first <- err
			}()
			time.Sleep(30 * time.Millisecond) // the first is at the bank
			if _, err := e.createLinkAs(user, "bob", otherKey); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED) {
				t.Errorf("CreateLink with another request under a key in use: %v, want IDEMPOTENCY_KEY_REUSED", err)
			}
			if err := <-first; err != nil {
				t.Errorf("CreateLink whose key another request reused meanwhile: %v", err)
			}
		})
	}
}
