package carrierpush

// KVReader is what VaultSecrets reads Vault through (a *credentials.KV).
type KVReader = kvReader

// NewVaultSecretsOver builds VaultSecrets over kv, so a test can count the
// reads that reach Vault.
var NewVaultSecretsOver = newVaultSecrets
