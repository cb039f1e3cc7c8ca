# Policy for the webhooks service: manage the endpoints' signing secrets,
# which it makes itself, and read the event bus's NATS credentials; nothing
# else. Signing secrets live in KV v2 at bankbridge/webhooks/<endpoint_id>:
# the service writes a new version at registration and rotation, reads it
# to sign deliveries, and deletes every version (the metadata) when an
# endpoint is deleted. It reads no bank or partner credential, and cannot
# list the endpoints' secrets. The NATS credentials (bankbridge/nats) are
# read at each connection to the bus, as bankbridge-service.hcl allows
# every service.
path "bankbridge/data/webhooks/*" {
  capabilities = ["create", "read", "update"]
}

path "bankbridge/metadata/webhooks/*" {
  capabilities = ["delete"]
}

path "bankbridge/data/nats" {
  capabilities = ["read"]
}
