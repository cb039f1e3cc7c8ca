# Policy for a service on the event bus (consent, receipts, shipping,
# support, webhooks): read the NATS credentials in KV v2 at bankbridge/nats
# (keys creds, token, or user and password), at each connection to NATS;
# nothing else. Operators write and rotate them.
path "bankbridge/data/nats" {
  capabilities = ["read"]
}
