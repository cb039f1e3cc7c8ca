package bootstrap

import (
	"context"
	"fmt"
	"strings"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
)

// VaultCredentials serves adapter credentials from the Vault provider (KV v2
// bankbridge/<bank.VaultPath>, banks/<bank_id> by default), cached and
// rotated by the provider.
type VaultCredentials struct {
	Provider *credentials.Provider
}

// BankCredential returns the secret at the bank's VaultPath, which must be
// banks/<id> under the provider's mount. The error names the bank and the
// path, never a value.
func (v VaultCredentials) BankCredential(ctx context.Context, bank runtime.Bank) (map[string]string, error) {
	id, ok := strings.CutPrefix(bank.VaultPath, "banks/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, fmt.Errorf("bank %s: vault path %q: the credentials provider reads banks/<id> only", bank.ID, bank.VaultPath)
	}
	s, err := v.Provider.Bank(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}
