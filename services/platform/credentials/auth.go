package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

const (
	attrTokenTTL = "bankbridge.vault_token_ttl"
	attrRetryIn  = "bankbridge.retry_in"

	// Re-login attempts back off between these bounds, with jitter, so that
	// replicas coming back after a Vault outage do not log in in lockstep.
	minLoginRetry = 500 * time.Millisecond
	maxLoginRetry = 30 * time.Second
	// minTokenCheckInterval bounds the token checks that denied reads ask
	// for: a policy that denies a bank must not turn every read of it into
	// two requests.
	minTokenCheckInterval = 5 * time.Second
)

// logIn obtains a token with the configured method and makes the client use
// it. It returns the login answer, whose Auth the lifetime watcher renews.
func (p *Provider) logIn(ctx context.Context) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	auth, err := p.authenticate(ctx)
	p.metrics.login(ctx, p.cfg.Auth.Method, err)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.cfg.Auth.Method, err)
	}
	p.client.SetToken(auth.Auth.ClientToken)
	p.logins.Add(1)
	return auth, nil
}

func (p *Provider) authenticate(ctx context.Context) (*api.Secret, error) {
	var method api.AuthMethod
	switch a := p.cfg.Auth; a.Method {
	case AuthToken:
		return p.lookUpToken(ctx, string(a.Token))
	case AuthAppRole:
		m, err := approle.NewAppRoleAuth(a.AppRole.RoleID,
			&approle.SecretID{FromString: string(a.AppRole.SecretID), FromFile: a.AppRole.SecretIDFile},
			approle.WithMountPath(a.AppRole.MountPath))
		if err != nil {
			return nil, err
		}
		method = m
	case AuthKubernetes:
		// Built at every login because it reads the token file then, and
		// projected service-account tokens rotate.
		m, err := kubernetes.NewKubernetesAuth(a.Kubernetes.Role,
			kubernetes.WithServiceAccountTokenPath(a.Kubernetes.TokenPath),
			kubernetes.WithMountPath(a.Kubernetes.MountPath))
		if err != nil {
			return nil, err
		}
		method = m
	default:
		return nil, fmt.Errorf("auth method %q: %w", string(a.Method), ErrUnavailable)
	}
	auth, err := method.Login(ctx, p.login)
	if err != nil {
		return nil, loginError(err)
	}
	if auth == nil || auth.Auth == nil || auth.Auth.ClientToken == "" {
		return nil, fmt.Errorf("vault login answer holds no token: %w", ErrUnavailable)
	}
	return auth, nil
}

// loginError makes a login error safe to return: an answer from Vault is
// reduced to its status code, while a local problem (an unreadable secret-id
// or token file) keeps its text, which names the file but not its content.
func loginError(err error) error {
	if _, ok := errors.AsType[*api.ResponseError](err); ok {
		return vaultError(err)
	}
	return fmt.Errorf("%w: %w", err, ErrUnavailable)
}

// lookUpToken checks a given token and learns whether and for how long it
// can be renewed; it fails at start on a token Vault does not know.
func (p *Provider) lookUpToken(ctx context.Context, token string) (*api.Secret, error) {
	p.client.SetToken(token)
	self, err := p.client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", vaultError(err))
	}
	ttl, err := self.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("look up token: ttl: %w: %w", err, ErrUnavailable)
	}
	renewable, err := self.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("look up token: renewable: %w: %w", err, ErrUnavailable)
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   token,
		Renewable:     renewable,
		LeaseDuration: int(ttl / time.Second),
	}}, nil
}

// keepToken keeps the provider logged in until it closes: Vault's lifetime
// watcher renews the token, and when it reports done (the token reached its
// max TTL, or could not be renewed in time) the provider logs in again, as
// hashicorp/hello-vault-go's sample-app/vault_renewal.go does. Unlike the
// sample, a failed login is retried rather than fatal: reads are served
// from the cache meanwhile.
func (p *Provider) keepToken(auth *api.Secret) {
	for {
		p.watchToken(auth)
		if p.ctx.Err() != nil {
			return
		}
		if !p.cfg.Auth.canRelogin() {
			p.log.Warn("vault token can no longer be renewed and the token method cannot log in again; reads will fail once it expires",
				slog.String(attrAuthMethod, string(p.cfg.Auth.Method)))
			<-p.ctx.Done()
			return
		}
		next, ok := p.logInAgain()
		if !ok {
			return
		}
		auth = next
	}
}

// watchToken returns when auth's token needs replacing or the provider
// closes. It leaves no watcher goroutine behind.
func (p *Provider) watchToken(auth *api.Secret) {
	if auth.Auth.LeaseDuration <= 0 {
		// A token without a TTL (a root token, say) never needs renewing.
		<-p.ctx.Done()
		return
	}
	w, err := p.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: auth})
	if err != nil {
		// Only a nil secret makes this fail; log in again.
		p.log.Error("vault token watcher", slog.Any("error", err))
		return
	}
	go w.Start()
	watching := true
	defer func() {
		w.Stop()
		if watching {
			<-w.DoneCh() // Start returns, and its goroutine ends, on Stop
		}
	}()

	var lastCheck time.Time
	for {
		select {
		case <-p.ctx.Done():
			return
		case err := <-w.DoneCh():
			watching = false
			if err != nil {
				p.log.Warn("vault token renewal failed; logging in again", slog.Any("error", loginError(err)))
			} else {
				p.log.Info("vault token at the end of its renewable life; logging in again")
			}
			return
		case r := <-w.RenewCh():
			if r.Secret != nil && r.Secret.Auth != nil {
				p.log.Debug("vault token renewed", slog.Duration(attrTokenTTL, time.Duration(r.Secret.Auth.LeaseDuration)*time.Second))
			}
		case <-p.reauth:
			if !p.cfg.Auth.canRelogin() || time.Since(lastCheck) < minTokenCheckInterval {
				continue
			}
			lastCheck = time.Now()
			if p.tokenRejected() {
				p.log.Warn("vault rejects the token; logging in again")
				return
			}
		}
	}
}

// checkToken asks keepToken to check the token, after a read was denied: a
// token that expired while Vault was unreachable is denied everything, and
// waiting for the watcher to notice would keep every bank unavailable.
func (p *Provider) checkToken() {
	select {
	case p.reauth <- struct{}{}:
	default: // a check is already pending
	}
}

// tokenRejected reports whether Vault no longer accepts the token, which
// tells a dead token from a policy that denies one path.
func (p *Provider) tokenRejected() bool {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RequestTimeout)
	defer cancel()
	_, err := p.client.Auth().Token().LookupSelfWithContext(ctx)
	return isForbidden(err)
}

// logInAgain logs in until it succeeds or the provider closes.
func (p *Provider) logInAgain() (*api.Secret, bool) {
	delay := minLoginRetry
	for {
		auth, err := p.logIn(p.ctx)
		if err == nil {
			p.log.Info("logged in to vault again", slog.String(attrAuthMethod, string(p.cfg.Auth.Method)),
				slog.Duration(attrTokenTTL, time.Duration(auth.Auth.LeaseDuration)*time.Second))
			return auth, true
		}
		if p.ctx.Err() != nil {
			return nil, false
		}
		wait := delay + rand.N(delay/2)
		p.log.Warn("vault login failed; retrying", slog.Duration(attrRetryIn, wait), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return nil, false
		case <-t.C:
		}
		delay = min(2*delay, maxLoginRetry)
	}
}
