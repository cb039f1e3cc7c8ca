package credentials

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New to the zero fields of a Config.
const (
	DefaultMount               = "bankbridge"
	DefaultRefreshInterval     = 5 * time.Minute
	DefaultMaxStale            = time.Hour
	DefaultRequestTimeout      = 5 * time.Second
	DefaultAppRoleMountPath    = "approle"
	DefaultKubernetesMountPath = "kubernetes"
	DefaultKubernetesTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// redacted stands in for a credential when settings are printed.
const redacted = "[redacted]"

// AuthMethod names how the provider logs in to Vault.
type AuthMethod string

// The supported auth methods.
const (
	// AuthToken uses a token handed to the process; it is renewed while
	// renewable but cannot be replaced, so it suits development and tests.
	AuthToken AuthMethod = "token"
	// AuthAppRole logs in with a role id and secret id.
	AuthAppRole AuthMethod = "approle"
	// AuthKubernetes logs in with the pod's service-account token.
	AuthKubernetes AuthMethod = "kubernetes"
)

// Config says where Vault is, how to log in and how long secrets are cached.
// The zero value of every field but Address and Auth takes the documented
// default.
type Config struct {
	// Address is Vault's URL, such as https://vault.internal:8200. Required.
	Address string
	// CACert is a PEM file of CAs that sign Vault's certificate; empty uses
	// the system pool (and Vault's standard VAULT_CACERT-style variables).
	CACert string
	// Mount is the path of the KV v2 secrets engine; default "bankbridge".
	// Bank secrets live at <Mount>/banks/<bank_id>, partner secrets at
	// <Mount>/partners/<partner_id>.
	Mount string
	// Auth selects the login method and holds its settings.
	Auth AuthConfig
	// RefreshInterval is how long a read secret is served without asking
	// Vault again, and how often cached secrets are re-read in the
	// background so rotations are picked up; default 5m.
	RefreshInterval time.Duration
	// MaxStale is how long after its last successful read a cached secret is
	// still served while Vault is unreachable or failing; default 1h. Past
	// it, callers get ErrUnavailable rather than credentials that may have
	// been rotated away long ago. It must be at least RefreshInterval.
	MaxStale time.Duration
	// RequestTimeout bounds each request to Vault; default 5s.
	RequestTimeout time.Duration
}

// AuthConfig holds the settings of the login methods; only those of Method
// are used.
type AuthConfig struct {
	// Method is the login method. Required.
	Method AuthMethod
	// Token is the Vault token for AuthToken.
	Token Sensitive
	// AppRole holds the settings for AuthAppRole.
	AppRole AppRoleConfig
	// Kubernetes holds the settings for AuthKubernetes.
	Kubernetes KubernetesConfig
}

// AppRoleConfig holds the settings of AppRole login.
type AppRoleConfig struct {
	// RoleID identifies the role. Required.
	RoleID string
	// SecretID is the role's secret id. Exactly one of SecretID and
	// SecretIDFile is required.
	SecretID Sensitive
	// SecretIDFile is a file holding the secret id; it is read at every
	// login, so an orchestrator can replace it.
	SecretIDFile string
	// MountPath is where the AppRole auth method is mounted; default
	// "approle".
	MountPath string
}

// KubernetesConfig holds the settings of Kubernetes login.
type KubernetesConfig struct {
	// Role is the Vault role bound to the pod's service account. Required.
	Role string
	// TokenPath is the service-account token file; it is read at every
	// login because projected tokens rotate. Default
	// /var/run/secrets/kubernetes.io/serviceaccount/token.
	TokenPath string
	// MountPath is where the Kubernetes auth method is mounted; default
	// "kubernetes".
	MountPath string
}

// Sensitive is a credential in a Config: a token or a secret id. It prints,
// logs and marshals as [redacted], so that a Config dumped to a log or an
// error leaks nothing.
type Sensitive string

// String returns [redacted], or "" when s is empty so that a missing value
// still shows.
func (s Sensitive) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts s for %#v, as String does.
func (s Sensitive) GoString() string { return strconv.Quote(s.String()) }

// LogValue redacts s in slog records.
func (s Sensitive) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts s in encoding/json and any text encoding.
func (s Sensitive) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// withDefaults returns c with every zero field that has a default set.
func (c Config) withDefaults() Config {
	if c.Mount == "" {
		c.Mount = DefaultMount
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxStale == 0 {
		c.MaxStale = DefaultMaxStale
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	switch c.Auth.Method {
	case AuthAppRole:
		if c.Auth.AppRole.MountPath == "" {
			c.Auth.AppRole.MountPath = DefaultAppRoleMountPath
		}
	case AuthKubernetes:
		if c.Auth.Kubernetes.MountPath == "" {
			c.Auth.Kubernetes.MountPath = DefaultKubernetesMountPath
		}
		if c.Auth.Kubernetes.TokenPath == "" {
			c.Auth.Kubernetes.TokenPath = DefaultKubernetesTokenPath
		}
	}
	return c
}

// Validate reports every problem of c, its defaults applied, in one error;
// New calls it, so a misconfigured service fails at start with the whole
// list rather than one problem per restart.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Address == "" {
		add("Address is required")
	} else if u, err := url.Parse(c.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("Address %q is not an http(s) URL", c.Address)
	}
	if strings.HasPrefix(c.Mount, "/") || strings.HasSuffix(c.Mount, "/") {
		add("Mount %q must not start or end with /", c.Mount)
	}
	if c.RefreshInterval < 0 {
		add("RefreshInterval %s is negative", c.RefreshInterval)
	}
	if c.MaxStale < 0 {
		add("MaxStale %s is negative", c.MaxStale)
	}
	if c.RefreshInterval > 0 && c.MaxStale > 0 && c.MaxStale < c.RefreshInterval {
		add("MaxStale %s is shorter than RefreshInterval %s", c.MaxStale, c.RefreshInterval)
	}
	if c.RequestTimeout < 0 {
		add("RequestTimeout %s is negative", c.RequestTimeout)
	}

	switch a := c.Auth; a.Method {
	case AuthToken:
		if a.Token == "" {
			add("Auth.Token is required for the token method")
		}
	case AuthAppRole:
		if a.AppRole.RoleID == "" {
			add("Auth.AppRole.RoleID is required for the approle method")
		}
		switch {
		case a.AppRole.SecretID == "" && a.AppRole.SecretIDFile == "":
			add("one of Auth.AppRole.SecretID and Auth.AppRole.SecretIDFile is required for the approle method")
		case a.AppRole.SecretID != "" && a.AppRole.SecretIDFile != "":
			add("only one of Auth.AppRole.SecretID and Auth.AppRole.SecretIDFile may be set")
		}
	case AuthKubernetes:
		if a.Kubernetes.Role == "" {
			add("Auth.Kubernetes.Role is required for the kubernetes method")
		}
	case "":
		add("Auth.Method is required: %s, %s or %s", AuthToken, AuthAppRole, AuthKubernetes)
	default:
		add("Auth.Method %q is not one of %s, %s, %s", string(a.Method), AuthToken, AuthAppRole, AuthKubernetes)
	}

	if len(errs) == 0 {
		return nil
	}
	return &ConfigError{Problems: errs}
}

// ConfigError lists every problem found in a Config.
type ConfigError struct {
	// Problems holds one error per problem, in field order.
	Problems []error
}

// Error joins the problems on one line, so the whole list fits a log entry.
func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "invalid credentials config: " + strings.Join(msgs, "; ")
}

// Unwrap exposes the individual problems to errors.Is and errors.As.
func (e *ConfigError) Unwrap() []error { return e.Problems }

// canRelogin reports whether the method can obtain a new token when the
// current one can no longer be renewed.
func (a AuthConfig) canRelogin() bool { return a.Method != AuthToken }
