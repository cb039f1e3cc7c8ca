# Policy for the consent service, beside bankbridge-service.hcl: sign the
# access log's chain heads with the Transit key bankbridge-access-log
# (--access-log-key; ed25519 or ecdsa-p256, in the engine at transit/,
# --transit-mount) and read the key's public versions, with which it
# verifies them itself. Nothing else of Transit: it cannot create, rotate,
# configure, export or delete the key (operators do), nor use any other
# key. Whoever only checks the access log (verify-access-log) needs the
# second rule alone. And read the service's own secret keys in KV v2 at
# bankbridge/keys/consent (code_hmac_key, code_hmac_key_previous,
# login_hmac_key: the keys of request fingerprints and of bank login
# hashes), which no other service may read and operators write.
path "transit/sign/bankbridge-access-log" {
  capabilities = ["update"]
}

path "transit/keys/bankbridge-access-log" {
  capabilities = ["read"]
}

path "bankbridge/data/keys/consent" {
  capabilities = ["read"]
}
