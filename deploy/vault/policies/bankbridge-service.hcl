# Policy for a bankbridge service (consent, balance, shipping, ...): read
# the banks', payment partners' and carriers' credentials and the event
# bus's NATS credentials, nothing else. Secrets live in KV v2 at
# bankbridge/banks/<bank_id>, bankbridge/partners/<partner_id>,
# bankbridge/carriers/<carrier> (the signing secret a carrier's pushes are
# verified with: keys secret and, while a rotation settles, previous) and
# bankbridge/nats (keys creds, token, or user and password; read at each
# connection to NATS); a service never writes them (operators rotate
# them). To confine a service to some banks or carriers, list their paths
# instead of the wildcard.
path "bankbridge/data/banks/*" {
  capabilities = ["read"]
}

path "bankbridge/data/partners/*" {
  capabilities = ["read"]
}

path "bankbridge/data/carriers/*" {
  capabilities = ["read"]
}

path "bankbridge/data/nats" {
  capabilities = ["read"]
}
