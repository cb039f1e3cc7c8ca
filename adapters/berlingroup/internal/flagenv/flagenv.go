// Package flagenv lets the Berlin Group commands take each flag from a
// BANKBRIDGE_* environment variable, as bankbridge's own binaries do.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Name is the environment variable of the flag name: --bank-url is
// BANKBRIDGE_BANK_URL.
func Name(flagName string) string {
	return "BANKBRIDGE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply sets each flag of fs not given on the command line from its
// environment variable (Name), after fs.Parse: a flag wins over its
// variable. A value the flag refuses is an error naming the variable.
func Apply(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := Name(f.Name)
		if v, ok := os.LookupEnv(env); ok && !set[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}
