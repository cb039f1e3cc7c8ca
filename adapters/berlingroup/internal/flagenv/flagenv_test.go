package flagenv_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/berlingroup/internal/flagenv"
)

func TestApply(t *testing.T) {
	t.Setenv("BANKBRIDGE_BANK_URL", "https://env.example")
	t.Setenv("BANKBRIDGE_LISTEN", "127.0.0.1:1")
	t.Setenv("BANKBRIDGE_TIMEOUT", "3s")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	bankURL := fs.String("bank-url", "", "")
	listen := fs.String("listen", "127.0.0.1:9", "")
	timeout := fs.Duration("timeout", time.Second, "")
	other := fs.String("other", "default", "")
	if err := fs.Parse([]string{"--listen", "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	if err := flagenv.Apply(fs); err != nil {
		t.Fatal(err)
	}
	if *bankURL != "https://env.example" || *timeout != 3*time.Second {
		t.Errorf("from the environment: bank-url %q, timeout %v", *bankURL, *timeout)
	}
	if *listen != "127.0.0.1:2" {
		t.Errorf("listen = %q: the command line's flag must win over BANKBRIDGE_LISTEN", *listen)
	}
	if *other != "default" {
		t.Errorf("other = %q without a variable", *other)
	}
}

func TestApplyNamesTheBadVariable(t *testing.T) {
	t.Setenv("BANKBRIDGE_TIMEOUT", "soon")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("timeout", time.Second, "")
	_ = fs.Parse(nil)
	err := flagenv.Apply(fs)
	if err == nil || !strings.HasPrefix(err.Error(), "BANKBRIDGE_TIMEOUT: ") {
		t.Errorf("Apply = %v; want an error naming BANKBRIDGE_TIMEOUT", err)
	}
}
