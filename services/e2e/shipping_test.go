package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
)

// shipmentEvent is one line of the REST watch stream (newline-delimited
// JSON, one {"result": ...} per event).
type shipmentEvent struct {
	Type     string `json:"type"`
	Shipment struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"shipment"`
	Checkpoint *struct {
		Status string `json:"status"`
		Time   string `json:"time"`
	} `json:"checkpoint"`
	UpdateMask string `json:"update_mask"`
}

// watch opens the user's shipment stream over REST through the gateway,
// from cursor, and delivers each event with its cursor until ctx ends.
func watch(ctx context.Context, t *testing.T, token, user, cursor string) <-chan struct {
	ev     shipmentEvent
	cursor string
} {
	t.Helper()
	url := shared.stack.GatewayURL + "/v1/users/" + user + "/shipments:watch"
	if cursor != "" {
		url += "?resume_cursor=" + cursor
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Bankbridge-Purpose", "ORDER_TRACKING")
	resp, err := shared.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	out := make(chan struct {
		ev     shipmentEvent
		cursor string
	}, 64)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Result struct {
					Event  shipmentEvent `json:"event"`
					Cursor string        `json:"cursor"`
				} `json:"result"`
				Error json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Error != nil {
				return
			}
			select {
			case out <- struct {
				ev     shipmentEvent
				cursor string
			}{line.Result.Event, line.Result.Cursor}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// TestParcelMovesLive: alice registers the sandbox carrier's "delivered"
// number and watches it over REST; the sandbox carrier pushes its scripted
// sequence through the signed endpoint; her stream gets every step in
// order, through a drop and a resume with the last cursor, and ends on
// DELIVERED. bob, who registers the same number, sees only his own
// shipment.
func TestParcelMovesLive(t *testing.T) {
	const alice, bob = "parcel-alice", "parcel-bob"
	scopes, purposes := []string{"SCOPE_ACCOUNTS", "SCOPE_SHIPPING"}, []string{"PURPOSE_ORDER_TRACKING"}
	aliceTok, bobTok := devToken(t, alice), devToken(t, bob)
	linkFor(t, aliceTok, alice, "alice", scopes, purposes)
	linkFor(t, bobTok, bob, "bob", scopes, purposes)

	number := sandbox.TrackingDelivered
	create := func(tok, user string) map[string]any {
		r := call(t, http.MethodPost, "/v1/users/"+user+"/shipments", tok, "ORDER_TRACKING", map[string]any{"tracking_number": number})
		r.want(t, http.StatusOK, "")
		s, _ := r.body["shipment"].(map[string]any)
		if s["carrier"] != "sandbox" || s["carrier_detected"] != true || s["status"] != "SHIPMENT_STATUS_PENDING" {
			t.Fatalf("created shipment: %s", r.raw)
		}
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first, stop := context.WithCancel(ctx)
	events := watch(first, t, aliceTok, alice, "")
	aliceShipment := create(aliceTok, alice)
	bobShipment := create(bobTok, bob)
	bobEvents := watch(ctx, t, bobTok, bob, "")

	// The carrier plays the script.
	admin := "https://" + shared.stack.AdminAddr("sandbox") + "/admin/carrier/play?tracking_number=" + number
	resp, err := shared.http.Post(admin, "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("play: %v %v", resp, err)
	}
	resp.Body.Close()

	// Two updates, then the connection drops. A stream that resumes may
	// hear of a checkpoint it heard of live once more (the change as the
	// user's own event, with the whole state); a client knows a
	// checkpoint by its time and status, as this one does.
	var statuses []string
	var cursor string
	seen := map[string]bool{}
	record := func(ev shipmentEvent) {
		if ev.Type != "SHIPMENT_EVENT_TYPE_UPDATED" || ev.Checkpoint == nil {
			return
		}
		if k := ev.Checkpoint.Time + "|" + ev.Checkpoint.Status; !seen[k] {
			seen[k] = true
			statuses = append(statuses, ev.Checkpoint.Status)
		}
	}
	next := func(ch <-chan struct {
		ev     shipmentEvent
		cursor string
	}) (shipmentEvent, string) {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended after %v", statuses)
			}
			return e.ev, e.cursor
		case <-ctx.Done():
			t.Fatalf("no event after %v", statuses)
		}
		return shipmentEvent{}, ""
	}
	for len(statuses) < 2 {
		ev, c := next(events)
		cursor = c
		if ev.Shipment.Name != aliceShipment["name"] {
			t.Fatalf("alice's stream carries %q", ev.Shipment.Name)
		}
		if ev.Type == "SHIPMENT_EVENT_TYPE_UPDATED" && ev.UpdateMask == "" {
			t.Errorf("a live checkpoint came without update_mask: %+v", ev)
		}
		record(ev)
	}
	stop()
	time.Sleep(500 * time.Millisecond) // a step or two passes while she is away
	resumed := watch(ctx, t, aliceTok, alice, cursor)
	for statuses[len(statuses)-1] != "SHIPMENT_STATUS_DELIVERED" {
		ev, _ := next(resumed)
		if ev.Shipment.Name != aliceShipment["name"] {
			t.Fatalf("alice's resumed stream carries %q", ev.Shipment.Name)
		}
		record(ev)
	}
	want := []string{"SHIPMENT_STATUS_INFO_RECEIVED", "SHIPMENT_STATUS_IN_TRANSIT", "SHIPMENT_STATUS_IN_TRANSIT",
		"SHIPMENT_STATUS_OUT_FOR_DELIVERY", "SHIPMENT_STATUS_DELIVERED"}
	if strings.Join(statuses, ",") != strings.Join(want, ",") {
		t.Errorf("alice's stream saw %v, want %v (nothing lost across the resume, in order)", statuses, want)
	}
	got := call(t, http.MethodGet, "/v1/"+aliceShipment["name"].(string), aliceTok, "ORDER_TRACKING", nil)
	got.want(t, http.StatusOK, "")
	if s := got.body["shipment"].(map[string]any); s["status"] != "SHIPMENT_STATUS_DELIVERED" || s["signed_by"] == "" {
		t.Errorf("alice's shipment after the script: %s", got.raw)
	}

	// bob's stream and list carry his shipment only; alice's is not his.
	ev, _ := next(bobEvents)
	if ev.Shipment.Name != bobShipment["name"] {
		t.Errorf("bob's stream carries %q", ev.Shipment.Name)
	}
	l := call(t, http.MethodGet, "/v1/users/"+bob+"/shipments", bobTok, "ORDER_TRACKING", nil)
	l.want(t, http.StatusOK, "")
	if strings.Contains(l.raw, alice) || len(asList(l.body["shipments"])) != 1 {
		t.Errorf("bob's list: %s", l.raw)
	}
	call(t, http.MethodGet, "/v1/"+aliceShipment["name"].(string), bobTok, "ORDER_TRACKING", nil).want(t, http.StatusForbidden, "USER_MISMATCH")
}

// TestCarrierPushesAreAuthenticated: a push with a bad signature, a stale
// timestamp or a replayed id is a 401 and stores nothing; the same event
// resent in a new push is stored once.
func TestCarrierPushesAreAuthenticated(t *testing.T) {
	const user = "parcel-carol"
	tok := devToken(t, user)
	linkFor(t, tok, user, "alice", []string{"SCOPE_ACCOUNTS", "SCOPE_SHIPPING"}, []string{"PURPOSE_ORDER_TRACKING"})
	number := sandbox.TrackingException
	r := call(t, http.MethodPost, "/v1/users/"+user+"/shipments", tok, "ORDER_TRACKING", map[string]any{"tracking_number": number})
	r.want(t, http.StatusOK, "")
	name := r.body["shipment"].(map[string]any)["name"].(string)

	secret, err := os.ReadFile(filepath.Join(shared.stack.DataDir(), "sandbox-carrier-secret"))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(fmt.Sprintf(`{"events":[{"event_id":"e2e-%d","tracking_number":%q,`+
		`"checkpoint":{"time":%q,"status":"SHIPMENT_STATUS_IN_TRANSIT","location":{"city":"Leipzig","country_code":"DE"}}}]}`,
		time.Now().UnixNano(), number, time.Now().UTC().Format(time.RFC3339)))
	url := shared.stack.GatewayURL + "/v1/carriers/sandbox/trackingEvents"
	push := func(id string, at time.Time, key string, b []byte) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if err := stdwebhook.SetHeaders(req.Header, []string{key}, id, at, b); err != nil {
			t.Fatal(err)
		}
		resp, err := shared.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	status := func() string {
		g := call(t, http.MethodGet, "/v1/"+name, tok, "ORDER_TRACKING", nil)
		g.want(t, http.StatusOK, "")
		return g.body["shipment"].(map[string]any)["status"].(string)
	}
	key := strings.TrimSpace(string(secret))
	if got := push(randomKey(), time.Now(), stdwebhook.NewSecret(), body); got != http.StatusUnauthorized {
		t.Errorf("a push signed with another secret: %d", got)
	}
	if got := push(randomKey(), time.Now().Add(-6*time.Minute), key, body); got != http.StatusUnauthorized {
		t.Errorf("a push six minutes old: %d", got)
	}
	if s := status(); s != "SHIPMENT_STATUS_PENDING" {
		t.Fatalf("refused pushes changed the shipment: %s", s)
	}
	id := randomKey()
	if got := push(id, time.Now(), key, body); got != http.StatusOK {
		t.Fatalf("a good push: %d", got)
	}
	if s := status(); s != "SHIPMENT_STATUS_IN_TRANSIT" {
		t.Fatalf("after a good push: %s", s)
	}
	if got := push(id, time.Now(), key, body); got != http.StatusUnauthorized {
		t.Errorf("the same push id again: %d", got)
	}
	if got := push(randomKey(), time.Now(), key, body); got != http.StatusOK {
		t.Errorf("the same event in a new push: %d", got)
	}
	g := call(t, http.MethodGet, "/v1/"+name, tok, "ORDER_TRACKING", nil)
	if n := len(asList(g.body["shipment"].(map[string]any)["checkpoints"])); n != 1 {
		t.Errorf("one event pushed three times (one replay refused) is stored %d times: %s", n, g.raw)
	}
}

// TestShipmentChangesReachAWebhook: the product's endpoint subscribed to
// shipping.shipment.tracked receives, signed, the change a carrier push
// makes to its user's shipment, naming that shipment only.
func TestShipmentChangesReachAWebhook(t *testing.T) {
	hooks := make(chan hook, 64)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooks <- hook{header: r.Header.Clone(), body: body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	r := call(t, http.MethodPost, "/v1/dev/tokens", "", "", map[string]any{"client_credentials": true})
	clientToken, _ := r.body["access_token"].(string)
	r = call(t, http.MethodPost, "/v1/clients/"+shared.stack.DevClient+"/endpoints", clientToken, "",
		map[string]any{"url": rcv.URL + "/parcels", "event_types": []string{"shipping.shipment.tracked"}})
	r.want(t, http.StatusOK, "")
	secret, _ := r.body["secret"].(string)

	const user = "parcel-dave"
	tok := devToken(t, user)
	linkFor(t, tok, user, "alice", []string{"SCOPE_ACCOUNTS", "SCOPE_SHIPPING"}, []string{"PURPOSE_ORDER_TRACKING"})
	c := call(t, http.MethodPost, "/v1/users/"+user+"/shipments", tok, "ORDER_TRACKING", map[string]any{"tracking_number": sandbox.TrackingReturned})
	c.want(t, http.StatusOK, "")
	name := c.body["shipment"].(map[string]any)["name"].(string)
	pushTrackingEvent(t, sandbox.TrackingReturned, "SHIPMENT_STATUS_IN_TRANSIT")

	deadline := time.After(60 * time.Second)
	for {
		var h hook
		select {
		case h = <-hooks:
		case <-deadline:
			t.Fatalf("no shipping.shipment.tracked for %s reached the endpoint", name)
		}
		var payload struct {
			Type string `json:"type"`
			Data struct {
				Resource string `json:"resource"`
			} `json:"data"`
		}
		if err := json.Unmarshal(h.body, &payload); err != nil {
			t.Fatalf("webhook body %s: %v", h.body, err)
		}
		if payload.Data.Resource != name {
			continue // another test's user of the same client
		}
		if payload.Type != "shipping.shipment.tracked" || !signedWith(secret, h) {
			t.Errorf("webhook %s, signature verifies: %v", h.body, signedWith(secret, h))
		}
		// A webhook carries the shipment's whole state, checkpoints too.
		if !strings.Contains(string(h.body), `"checkpoints"`) || !strings.Contains(string(h.body), `"createTime"`) {
			t.Errorf("webhook %s: want the shipment's whole state", h.body)
		}
		return
	}
}
