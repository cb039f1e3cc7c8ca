# Policy for a bankbridge service (consent, balance, ...): read the banks'
# and payment partners' credentials, nothing else. Secrets live in KV v2 at
# bankbridge/banks/<bank_id> and bankbridge/partners/<partner_id>; a
# service never writes them (operators rotate them). To confine a service to
# some banks, list their paths instead of the wildcard.
path "bankbridge/data/banks/*" {
  capabilities = ["read"]
}

path "bankbridge/data/partners/*" {
  capabilities = ["read"]
}
