// Command vault is the real HashiCorp Vault binary, built from Go modules so
// that tests and `make dev` can run `vault server -dev` on a machine that has
// nothing but the Go module proxy. It lives in a module of its own so that no
// product module carries Vault's server dependencies.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
