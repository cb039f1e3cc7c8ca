#!/bin/sh
# Seeds the compose stack's dev Vault as `make dev` seeds its own
# (services/devstack), then writes what the sandbox bank and the services
# read from files to $SHARED_DIR. Safe to run again: what exists is kept,
# or rewritten to the same effect.
set -eu
: "${VAULT_ADDR:?}" "${VAULT_TOKEN:?}" "${NATS_TOKEN:?}" "${SHARED_DIR:?}"

# enable PATH TYPE: mount a secrets engine unless something is there.
enable() {
  vault secrets list -format=json | grep -q "\"$1/\"" || vault secrets enable -path="$1" "$2"
}
# random N: N random bytes, hex.
random() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

enable bankbridge kv-v2
enable transit transit
vault write -f transit/keys/bankbridge-access-log type=ed25519 >/dev/null
vault kv get -mount=bankbridge keys/consent >/dev/null 2>&1 ||
  vault kv put -mount=bankbridge keys/consent code_hmac_key="$(random 32)" login_hmac_key="$(random 32)" >/dev/null
vault kv put -mount=bankbridge nats token="$NATS_TOKEN" >/dev/null

# The sandbox bank's API key and its carrier's signing secret (Standard
# Webhooks: whsec_ and 32 random bytes, base64), in Vault and in files.
if [ ! -s "$SHARED_DIR/sandbox-api-key" ]; then
  random 24 >"$SHARED_DIR/sandbox-api-key"
  printf 'whsec_%s' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$SHARED_DIR/sandbox-carrier-secret"
fi
vault kv put -mount=bankbridge banks/sandbox api_key="$(cat "$SHARED_DIR/sandbox-api-key")" >/dev/null
vault kv put -mount=bankbridge carriers/sandbox secret="$(cat "$SHARED_DIR/sandbox-carrier-secret")" >/dev/null

# PKI: a root CA (unless there is one) and a role per process, as
# services/platform/certs.DevRole: its name, localhost and IP addresses.
if ! vault secrets list -format=json | grep -q '"pki/"'; then
  vault secrets enable -max-lease-ttl=87600h pki
fi
# No issuer yet: list fails (pki/cert/ca would answer, empty).
vault list pki/issuers >/dev/null 2>&1 ||
  vault write -field=certificate pki/root/generate/internal common_name="bankbridge compose CA" ttl=87600h key_type=ec key_bits=256 >/dev/null
for name in sandbox gateway consent balance receipts shipping webhooks support; do
  vault write "pki/roles/$name" allowed_domains="$name,localhost" allow_bare_domains=true allow_subdomains=false \
    allow_glob_domains=false allow_wildcard_certificates=false allow_localhost=true allow_ip_sans=true \
    enforce_hostnames=true server_flag=true client_flag=true key_type=ec key_bits=256 ttl=1h max_ttl=24h no_store=true >/dev/null
done
vault read -field=certificate pki/cert/ca >"$SHARED_DIR/ca.pem"

# The processes run as nonroot (65532): they read these files.
chown 65532:65532 "$SHARED_DIR"/sandbox-api-key "$SHARED_DIR"/sandbox-carrier-secret
chmod 0400 "$SHARED_DIR"/sandbox-api-key "$SHARED_DIR"/sandbox-carrier-secret
chmod 0444 "$SHARED_DIR/ca.pem"
echo "vault-init: Vault seeded; CA in $SHARED_DIR/ca.pem"
