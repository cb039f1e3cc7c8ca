package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The triggers play, for the page, what happens outside the user's chat:
// they are dev-only, as the sandbox's admin endpoints they call are. Each
// takes a small JSON body from the page's own origin (a JSON content type
// makes a cross-site form post impossible, and a fetch from another origin
// needs a CORS preflight this server never grants) and answers JSON:
// what happened, or {"error": "..."} saying what to do.
type triggers struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger

	mu           sync.Mutex
	partnerToken string
	partnerUntil time.Time
}

var (
	userPattern        = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	partnerUserPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)
	trackingPattern    = regexp.MustCompile(`^[A-Za-z0-9-]{4,64}$`)
)

// maxTriggerBody bounds a trigger's request body.
const maxTriggerBody = 4 << 10

// decode reads a trigger's JSON body into v, refusing a request from
// another origin or not of JSON; it answers the refusal itself.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send the trigger's body as application/json")
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			writeError(w, http.StatusForbidden, "the demo triggers answer only the demo chat's own page")
			return false
		}
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		writeError(w, http.StatusForbidden, "the demo triggers answer only the demo chat's own page")
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxTriggerBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the trigger's body is not the JSON it takes: "+err.Error())
		return false
	}
	return true
}

// userRequest names the sandbox customer a trigger acts for: the demo
// links the user's bank with their own name as the bank login.
type userRequest struct {
	User string `json:"user"`
}

func (t *triggers) userOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req userRequest
	if !decode(w, r, &req) {
		return "", false
	}
	if !userPattern.MatchString(req.User) {
		writeError(w, http.StatusBadRequest, `"user" must be a sandbox login such as "alice"`)
		return "", false
	}
	return req.User, true
}

// fraud makes the sandbox bank raise a fraud alert for the user.
func (t *triggers) fraud(w http.ResponseWriter, r *http.Request) {
	user, ok := t.userOf(w, r)
	if !ok {
		return
	}
	var out struct {
		AlertIDs []string `json:"alert_ids"`
	}
	status, err := t.sandbox(r.Context(), "/admin/fraud-alerts", url.Values{"user": {user}}, &out)
	t.log.Info("demo trigger", slog.String("trigger", "fraud"), slog.Int("sandbox_status", status))
	switch {
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
	case status == http.StatusOK:
		writeJSON(w, http.StatusOK, map[string]any{"alerts_raised": len(out.AlertIDs)})
	case status == http.StatusNotFound:
		writeError(w, http.StatusNotFound, "the sandbox bank has no customer with this login; pick a sandbox user")
	case status == http.StatusConflict:
		writeError(w, http.StatusConflict, "the user has no link covering fraud alerts; link the bank first")
	default:
		writeError(w, http.StatusBadGateway, fmt.Sprintf("the sandbox bank answered HTTP %d", status))
	}
}

// parcel makes the sandbox carrier play a parcel: one signed tracking
// event every carrier step, pushed to the shipping service through the
// gateway, which the user's shipments:watch stream then shows.
func (t *triggers) parcel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TrackingNumber string `json:"tracking_number"`
	}
	if !decode(w, r, &req) {
		return
	}
	if !trackingPattern.MatchString(req.TrackingNumber) {
		writeError(w, http.StatusBadRequest, `"tracking_number" must be a tracking number such as "SBX0000000018"`)
		return
	}
	var out struct {
		Steps int `json:"steps"`
	}
	status, err := t.sandbox(r.Context(), "/admin/carrier/play", url.Values{"tracking_number": {req.TrackingNumber}}, &out)
	t.log.Info("demo trigger", slog.String("trigger", "parcel"), slog.Int("sandbox_status", status))
	switch {
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
	case status == http.StatusAccepted:
		writeJSON(w, http.StatusAccepted, map[string]any{"tracking_number": req.TrackingNumber, "steps": out.Steps})
	case status == http.StatusNotFound:
		writeError(w, http.StatusNotFound, "the sandbox carrier plays only its own numbers: SBX0000000018, SBX0000000026, SBX0000000034, SBX0000000042")
	case status == http.StatusConflict:
		writeError(w, http.StatusServiceUnavailable, "the sandbox bank plays no carrier in this stack")
	default:
		writeError(w, http.StatusBadGateway, fmt.Sprintf("the sandbox carrier answered HTTP %d", status))
	}
}

// agentTakeover makes the bank's agent ask for the user's conversation;
// bankbridge's assistant passes it to her, and she greets the user.
func (t *triggers) agentTakeover(w http.ResponseWriter, r *http.Request) {
	t.agent(w, r, "/admin/support/request-control", "agent-takeover",
		"the bank's agent holds the conversation already (or the case is closed)")
}

// agentHandback makes the bank's agent hand the user's conversation back
// to bankbridge's assistant.
func (t *triggers) agentHandback(w http.ResponseWriter, r *http.Request) {
	t.agent(w, r, "/admin/support/pass-control", "agent-handback",
		"the assistant holds the conversation already (or the case is closed)")
}

func (t *triggers) agent(w http.ResponseWriter, r *http.Request, path, name, conflict string) {
	user, ok := t.userOf(w, r)
	if !ok {
		return
	}
	status, err := t.sandbox(r.Context(), path, url.Values{"user": {user}}, nil)
	t.log.Info("demo trigger", slog.String("trigger", name), slog.Int("sandbox_status", status))
	switch {
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
	case status == http.StatusOK:
		writeJSON(w, http.StatusOK, map[string]any{"done": true})
	case status == http.StatusNotFound:
		writeError(w, http.StatusNotFound, "the bank has no open support case for the user; ask for a person first")
	case status == http.StatusConflict:
		writeError(w, http.StatusConflict, conflict)
	default:
		writeError(w, http.StatusBadGateway, fmt.Sprintf("the sandbox bank answered HTTP %d", status))
	}
}

// sandbox POSTs to an admin endpoint of the sandbox bank and decodes a
// 2xx answer into out. Its error texts are not passed on: the status is.
func (t *triggers) sandbox(ctx context.Context, path string, q url.Values, out any) (int, error) {
	u := t.cfg.SandboxAdmin.JoinPath(path)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		t.log.Warn("sandbox admin unreachable", slog.String("error", errorText(err)))
		return 0, fmt.Errorf("the sandbox bank's admin listener at %s did not answer; is the dev stack running?", t.cfg.SandboxAdmin.Host)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("the sandbox bank's answer was not the JSON it documents")
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// receipt pushes a receipt for the user as the dev partner would, after
// the user opted in to it (the page did, and handed over the
// partner-scoped id): the order of Nordic Outdoor that matches alice's
// pending card payment of €59.99 with her debit card ending 1043.
func (t *triggers) receipt(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PartnerUserID string `json:"partner_user_id"`
	}
	if !decode(w, r, &req) {
		return
	}
	if !partnerUserPattern.MatchString(req.PartnerUserID) {
		writeError(w, http.StatusBadRequest, `"partner_user_id" must be the id the user's opt-in to the partner minted`)
		return
	}
	if t.cfg.PartnerSecret == "" {
		writeError(w, http.StatusServiceUnavailable, "the demo chat has no partner secret (--partner-secret, BANKBRIDGE_PARTNER_SECRET); receipts cannot be pushed")
		return
	}
	token, err := t.token(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	order := "NO-" + digits(6)
	body, _ := json.Marshal(nordicOutdoor(req.PartnerUserID, order, time.Now().UTC()))
	u := t.cfg.Gateway.JoinPath("/v1/clients", t.cfg.PartnerClient, "receipts:ingest")
	hreq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the receipt request could not be made")
		return
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+token)
	hreq.Header.Set("Idempotency-Key", "demo-order-"+order)
	resp, err := t.http.Do(hreq)
	if err != nil {
		t.log.Warn("gateway unreachable", slog.String("trigger", "receipt"), slog.String("error", errorText(err)))
		writeError(w, http.StatusBadGateway, "the gateway did not answer the partner's push; is the dev stack running?")
		return
	}
	defer resp.Body.Close()
	t.log.Info("demo trigger", slog.String("trigger", "receipt"), slog.Int("gateway_status", resp.StatusCode))
	if resp.StatusCode != http.StatusOK {
		writeError(w, resp.StatusCode, "the gateway refused the partner's receipt: "+statusText(resp))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"partner": t.cfg.PartnerClient, "order_number": order})
}

// token is the partner's client-credentials token from the gateway's dev
// issuer, reused until a minute before it expires.
func (t *triggers) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.partnerToken != "" && time.Now().Before(t.partnerUntil) {
		return t.partnerToken, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.Gateway.JoinPath("/oauth/token").String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(t.cfg.PartnerClient, t.cfg.PartnerSecret)
	resp, err := t.http.Do(req)
	if err != nil {
		t.log.Warn("gateway unreachable", slog.String("trigger", "receipt"), slog.String("error", errorText(err)))
		return "", fmt.Errorf("the gateway's token endpoint did not answer; is the dev stack running?")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the gateway's token endpoint refused the partner %s (HTTP %d); is it a dev partner (--dev-partner-clients)?", t.cfg.PartnerClient, resp.StatusCode)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("the gateway's token endpoint answered no token")
	}
	t.partnerToken = tok.AccessToken
	t.partnerUntil = time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second - time.Minute)
	return t.partnerToken, nil
}

// statusText is a gateway error's reason and message (google.rpc.Status
// with an ErrorInfo), for the page to show.
func statusText(resp *http.Response) string {
	var st struct {
		Message string `json:"message"`
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&st); err != nil {
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	for _, d := range st.Details {
		if d.Reason != "" {
			return d.Reason + ": " + st.Message
		}
	}
	return st.Message
}

// money is a common.v1.Money in JSON.
type money struct {
	CurrencyCode string `json:"currency_code"`
	Units        string `json:"units"`
	Nanos        int32  `json:"nanos,omitempty"`
}

func eur(cents int64) money {
	return money{CurrencyCode: "EUR", Units: fmt.Sprint(cents / 100), Nanos: int32(cents%100) * 10_000_000}
}

// nordicOutdoor is the partner's receipt: two pairs of socks and a
// headlamp, shipped, paid with the debit card ending 1043.
func nordicOutdoor(partnerUserID, order string, now time.Time) map[string]any {
	type item struct {
		Title     string `json:"title"`
		Subtitle  string `json:"subtitle,omitempty"`
		Quantity  int    `json:"quantity"`
		UnitPrice money  `json:"unit_price"`
	}
	return map[string]any{
		"partner_user_id": partnerUserID,
		"receipt_id":      order,
		"receipt": map[string]any{
			"merchant_name":  "Nordic Outdoor",
			"order_number":   order,
			"purchase_time":  now.Format(time.RFC3339),
			"payment_method": map[string]any{"type": "PAYMENT_METHOD_TYPE_CARD", "masked_number": map[string]string{"last4": "1043"}},
			"line_items": []item{
				{Title: "Trail running socks", Subtitle: "Size 39-42", Quantity: 2, UnitPrice: eur(12_50)},
				{Title: "Headlamp 300 lm", Quantity: 1, UnitPrice: eur(29_99)},
			},
			"summary": map[string]any{"subtotal": eur(54_99), "shipping_cost": eur(5_00), "total_cost": eur(59_99)},
		},
	}
}

// digits is n random decimal digits.
func digits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, text string) {
	writeJSON(w, code, map[string]string{"error": text})
}

// writeStatus answers a google.rpc.Status, as the gateway does, for the
// page's API client to read like any other refusal.
func writeStatus(w http.ResponseWriter, httpCode, grpcCode int, message string) {
	writeJSON(w, httpCode, map[string]any{"code": grpcCode, "message": message, "details": []any{}})
}
