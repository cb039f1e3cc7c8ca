# Policy for a service that reads banks.yaml's banks (consent, balance,
# receipts, support): read each bank's credentials in KV v2 at
# bankbridge/banks/<bank_id>, nothing else. Operators write and rotate
# them. Beside it, a service has its PKI policy and what else it needs
# (bankbridge-nats.hcl, bankbridge-consent.hcl); bankbridge-service.hcl is
# the union of these read rules, for a deployment with one policy for all
# services. To confine a service to some banks, list their paths instead
# of the wildcard.
path "bankbridge/data/banks/*" {
  capabilities = ["read"]
}
