# Policy for every bankbridge service (not the gateway nor a bank): read
# the key of the pseudonymous user and link references in its logs, KV v2
# at bankbridge/telemetry/pseudonym (platform/pseudonym), the same key for
# every service; nothing else. Without it a service still serves, its log
# lines without user_ref nor link_ref. Operators write and rotate it.
path "bankbridge/data/telemetry/pseudonym" {
  capabilities = ["read"]
}
