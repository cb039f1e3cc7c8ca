# PKI policy for the consent process, beside its other policies: it may ask
# Vault's PKI secrets engine (mounted at pki/) for its own TLS certificate,
# under the role named after it, and nothing else of the engine. The role
# (pki/roles/consent; see services/platform/certs DevRole for what the dev stack
# writes) limits the certificate to the process's own names, so holding
# this policy cannot get a certificate naming another process. Every
# certificate is short-lived (an hour by default, --tls-cert-ttl) and the
# process asks for the next one at two thirds of its life, without a
# restart; it never reads, revokes or lists certificates, and cannot
# change the role or the CA.
path "pki/issue/consent" {
  capabilities = ["update"]
}
