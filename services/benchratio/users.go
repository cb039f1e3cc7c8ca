package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/services/devstack/stack"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// user is one linked synthetic user: the bankbridge user synth-NNNN, whose
// bank login is the sandbox's synthetic customer of the same name.
type user struct {
	id, token string
	// balance is the resource name of the balance of the user's one
	// account: users/synth-NNNN/accounts/sandbox~acc-synth-NNNN/balance.
	balance string
}

// linkWorkers link users concurrently: linking is not what is measured.
const linkWorkers = 8

// linkUsers gets a dev token for each of n synthetic users and links the
// sandbox bank for it, as the README's quick start does with curl: create
// the link (SCOPE_ACCOUNTS and SCOPE_BALANCES for ACCOUNT_INFORMATION,
// what GetBalance needs) and verify it with the sandbox's code.
func linkUsers(ctx context.Context, s *stack.Stack, n int) ([]user, error) {
	users := make([]user, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(linkWorkers)
	var mu sync.Mutex
	done := 0
	for i := range n {
		g.Go(func() error {
			u, err := linkUser(ctx, s, i)
			if err != nil {
				return err
			}
			users[i] = u
			mu.Lock()
			done++
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("link %d synthetic users (%d linked): %w", n, done, err)
	}
	return users, nil
}

func linkUser(ctx context.Context, s *stack.Stack, i int) (user, error) {
	id := sandbox.SyntheticLogin(i)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := post(ctx, s, "/v1/dev/tokens", "", map[string]string{"user": id}, &tok); err != nil {
		return user{}, fmt.Errorf("dev token for %s: %w", id, err)
	}
	var created struct {
		Link struct{ Name string } `json:"link"`
	}
	if err := post(ctx, s, "/v1/users/"+id+"/links", tok.AccessToken, map[string]any{
		"bank_id":         "sandbox",
		"scopes":          []string{"SCOPE_ACCOUNTS", "SCOPE_BALANCES"},
		"purposes":        []string{"PURPOSE_ACCOUNT_INFORMATION"},
		"bank_login_hint": id,
	}, &created); err != nil {
		return user{}, fmt.Errorf("link %s: %w", id, err)
	}
	var verified struct {
		Link struct{ State string } `json:"link"`
	}
	if err := post(ctx, s, "/v1/"+created.Link.Name+":verify", tok.AccessToken, map[string]string{"code": sandbox.Code}, &verified); err != nil {
		return user{}, fmt.Errorf("verify %s's link: %w", id, err)
	}
	if verified.Link.State != "CONSENT_STATE_VALID" {
		return user{}, fmt.Errorf("%s's link is %s after verify", id, verified.Link.State)
	}
	acct := names.Account{User: id, BankID: "sandbox", BankAccountID: sandbox.SyntheticAccountID(i)}
	return user{id: id, token: tok.AccessToken, balance: acct.Balance()}, nil
}

// post POSTs body as JSON to the gateway with a fresh Idempotency-Key and
// decodes a 200 answer into out.
func post(ctx context.Context, s *stack.Stack, path, token string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.GatewayURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Bankbridge-Purpose", "CONSENT_MANAGEMENT")
	}
	key := make([]byte, 12)
	_, _ = rand.Read(key)
	req.Header.Set("Idempotency-Key", hex.EncodeToString(key))
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}
