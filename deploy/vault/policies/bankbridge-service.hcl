# Policy for a bankbridge service (consent, balance, ...): read the banks'
# and payment partners' credentials and the event bus's NATS credentials,
# nothing else. Secrets live in KV v2 at bankbridge/banks/<bank_id>,
# bankbridge/partners/<partner_id> and bankbridge/nats (keys creds, token,
# or user and password; read at each connection to NATS); a service never
# writes them (operators rotate them). To confine a service to some banks,
# list their paths instead of the wildcard.
path "bankbridge/data/banks/*" {
  capabilities = ["read"]
}

path "bankbridge/data/partners/*" {
  capabilities = ["read"]
}

path "bankbridge/data/nats" {
  capabilities = ["read"]
}
