package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

// dupPairs is how many concurrent pairs each write RPC gets.
const dupPairs = 10

// dupWrites sends each write RPC twice at once with one idempotency key,
// through the gateway as a product team's retrying client would, and
// compares the two answers.
func dupWrites(ctx context.Context, m *Matrix) Outcome {
	o := Outcome{Pass: true}
	users := make([]*User, dupPairs)
	for i := range users {
		u := &User{ID: fmt.Sprintf("dup%s%02d", randomHex(2), i)}
		tok, err := m.H.DevToken(ctx, u.ID)
		if err != nil {
			o.fail("token: %v", err)
			return o
		}
		u.Token = tok
		users[i] = u
	}
	var calls []Call
	var mismatched []string
	// pair sends one request twice at once and returns both replies.
	pair := func(rpc, method, path string, u *User, purpose string, body any) (Reply, Reply) {
		key := randomHex(12)
		var a, b Reply
		var ea, eb error
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { a, ea = m.H.REST(ctx, method, path, u.Token, purpose, key, body) })
		wg.Go(func() { b, eb = m.H.REST(ctx, method, path, u.Token, purpose, key, body) })
		wg.Wait()
		lat := time.Since(start)
		for _, r := range []Reply{a, b} {
			c := Call{Op: "write", User: u.ID, Start: start, Latency: lat, Code: codes.OK}
			if r.Status != http.StatusOK {
				c.Code, c.Reason = codes.Unknown, r.Reason()
				if c.Reason == "" {
					c.Reason = fmt.Sprintf("HTTP_%d", r.Status)
				}
			}
			calls = append(calls, c)
		}
		if ea != nil || eb != nil {
			mismatched = append(mismatched, fmt.Sprintf("%s: %v %v", rpc, ea, eb))
		} else if a.Status != b.Status || canonical(a.Raw) != canonical(b.Raw) {
			mismatched = append(mismatched, fmt.Sprintf("%s: %d vs %d", rpc, a.Status, b.Status))
		}
		return a, b
	}
	var ships []*Write
	type linked struct {
		u    *User
		name string
	}
	var links []linked
	for _, u := range users {
		a, b := pair("CreateLink", http.MethodPost, "/v1/users/"+u.ID+"/links", u, "CONSENT_MANAGEMENT", map[string]any{
			"bank_id": "sandbox", "scopes": linkScopes, "purposes": linkPurposes, "bank_login_hint": "alice",
		})
		name, _ := nested(a.Body, "link", "name").(string)
		if name == "" {
			name, _ = nested(b.Body, "link", "name").(string)
		}
		if name == "" {
			continue
		}
		pair("VerifyLink", http.MethodPost, "/v1/"+name+":verify", u, "CONSENT_MANAGEMENT", map[string]any{"code": "123456"})
		// Asks the bank to extend the consent with a validity computed
		// per call: a second call racing the first there is refused.
		pair("ReconfirmLink", http.MethodPost, "/v1/"+name+":reconfirm", u, "CONSENT_MANAGEMENT", map[string]any{})
		w := &Write{User: u, Tracking: TrackingNumber()}
		s, _ := pair("CreateShipment", http.MethodPost, "/v1/users/"+u.ID+"/shipments", u, "ORDER_TRACKING", map[string]any{"tracking_number": w.Tracking})
		w.Acked = s.Status == http.StatusOK
		ships = append(ships, w)
		links = append(links, linked{u, name})
	}
	// Read the shipments back while the links still grant it.
	m.writesChecked(ctx, &Result{Writes: ships}, &o)
	for _, l := range links {
		pair("RevokeLink", http.MethodPost, "/v1/"+l.name+":revoke", l.u, "CONSENT_MANAGEMENT", map[string]any{})
	}
	o.Summary = Summarize(calls, time.Time{}, time.Time{})
	o.Duplicated += len(mismatched)
	if len(mismatched) > 0 {
		o.fail("%d of %d pairs got different answers (%s)", len(mismatched), len(calls)/2, strings.Join(first(mismatched, 4), "; "))
	}
	if o.Availability < 0.99 {
		o.fail("%.2f %% of the calls succeeded", o.Availability*100)
	}
	return o
}

// canonical is a JSON document with its keys sorted, for comparing two
// answers field by field whatever their order.
func canonical(raw string) string {
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return raw
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }
