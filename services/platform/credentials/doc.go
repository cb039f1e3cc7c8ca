// Package credentials serves each bank's (and partner's) credentials from
// Vault's KV v2 engine, at bankbridge/banks/<bank_id> and
// bankbridge/partners/<partner_id>.
//
// A Provider logs in with a token, AppRole or Kubernetes auth, keeps its
// token alive with Vault's lifetime watcher and logs in again when the token
// reaches its max TTL. Secrets are cached: however many requests ask for a
// bank at once, Vault sees one read per RefreshInterval. A background
// refresh picks up rotated versions without a restart, so the next caller
// gets the new one. While Vault is unreachable, a cached secret is served until it
// is MaxStale old; after that, or with nothing cached, callers get
// ErrUnavailable.
//
// The data are credentials: errors, logs and metrics carry ids, paths,
// versions and Vault status codes, never secret values or tokens.
package credentials
