# Policy for the shipping service: read the carriers' signing secrets in
# KV v2 at bankbridge/carriers/<carrier> (keys secret and, while a rotation
# settles, previous), with which it verifies their pushes; nothing else.
# Operators write and rotate them.
path "bankbridge/data/carriers/*" {
  capabilities = ["read"]
}
