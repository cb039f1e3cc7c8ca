package names_test

import (
	"errors"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

func TestBankOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, bank string
		ok             bool
	}{
		{"account", "users/alice/accounts/sandbox~acc_1", "sandbox", true},
		{"under an account", "users/alice/accounts/sandbox~acc_1/transactions/tx1", "sandbox", true},
		{"no bank part", "users/alice/accounts/acc_1", "", false},
		{"empty bank", "users/alice/accounts/~acc_1", "", false},
		{"empty id", "users/alice/accounts/sandbox~", "", false},
		{"user only", "users/alice", "", false},
		{"not a user name", "banks/x/accounts/sandbox~1", "", false},
		{"conversation", "users/alice/conversations/sandbox~c1", "sandbox", true},
		{"under a conversation", "users/alice/conversations/sandbox~c1/messages/m1", "sandbox", true},
		{"card", "users/alice/cards/sandbox~card-1", "sandbox", true},
		{"alert", "users/alice/alerts/sandbox~alert-1", "sandbox", true},
		{"fraud report", "users/alice/fraudReports/sandbox~r1", "sandbox", true},
		{"conversation without bank", "users/alice/conversations/c1", "", false},
		{"receipts carry no bank", "users/alice/receipts/sandbox~r1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bank, ok := names.BankOf(tt.in)
			if bank != tt.bank || ok != tt.ok {
				t.Errorf("BankOf(%q) = %q, %v; want %q, %v", tt.in, bank, ok, tt.bank, tt.ok)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"users/alice/accounts/a":                 "account",
		"users/alice/accounts/a/balance":         "balance",
		"users/alice/accounts/a/transactions/t1": "transaction",
		"users/alice":                            "resource",
		"users/alice/links/l1":                   "link",
		"users/alice/partnerOptIns/o1":           "partner opt-in",
	}
	for in, want := range tests {
		if got := names.KindOf(in); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseFormatRoundTrip(t *testing.T) {
	t.Parallel()
	alice := names.Account{User: "alice", BankID: "sandbox", BankAccountID: "acc~x.1"}
	tests := []struct {
		name   string
		in     string
		parse  func(string) (string, error)
		wantOK bool
	}{
		{"user", "users/alice", func(s string) (string, error) {
			u, err := names.ParseUser(s)
			return names.User(u), err
		}, true},
		{"account", "users/alice/accounts/sandbox~acc~x.1", func(s string) (string, error) {
			a, err := names.ParseAccount(s)
			return a.String(), err
		}, true},
		{"balance", "users/alice/accounts/sandbox~acc~x.1/balance", func(s string) (string, error) {
			a, err := names.ParseBalance(s)
			return a.Balance(), err
		}, true},
		{"transaction", "users/alice/accounts/sandbox~acc~x.1/transactions/tx-9", func(s string) (string, error) {
			tx, err := names.ParseTransaction(s)
			return tx.String(), err
		}, true},
		{"link", "users/alice/links/l1", func(s string) (string, error) {
			l, err := names.ParseLink(s)
			return l.String(), err
		}, true},
		{"partner opt-in", "users/alice/partnerOptIns/o1", func(s string) (string, error) {
			p, err := names.ParsePartnerOptIn(s)
			return p.String(), err
		}, true},
		{"user with a trailing slash", "users/alice/", func(s string) (string, error) {
			_, err := names.ParseUser(s)
			return "", err
		}, false},
		{"user without id", "users/", func(s string) (string, error) {
			_, err := names.ParseUser(s)
			return "", err
		}, false},
		{"account without bank", "users/alice/accounts/acc-1", func(s string) (string, error) {
			_, err := names.ParseAccount(s)
			return "", err
		}, false},
		{"account with empty bank account id", "users/alice/accounts/sandbox~", func(s string) (string, error) {
			_, err := names.ParseAccount(s)
			return "", err
		}, false},
		{"balance read as an account", "users/alice/accounts/sandbox~a/balance", func(s string) (string, error) {
			_, err := names.ParseAccount(s)
			return "", err
		}, false},
		{"account read as a balance", "users/alice/accounts/sandbox~a", func(s string) (string, error) {
			_, err := names.ParseBalance(s)
			return "", err
		}, false},
		{"transaction without id", "users/alice/accounts/sandbox~a/transactions/", func(s string) (string, error) {
			_, err := names.ParseTransaction(s)
			return "", err
		}, false},
		{"link in another collection", "users/alice/accounts/l1", func(s string) (string, error) {
			_, err := names.ParseLink(s)
			return "", err
		}, false},
		{"empty user in a link", "users//links/l1", func(s string) (string, error) {
			_, err := names.ParseLink(s)
			return "", err
		}, false},
		{"link read as a partner opt-in", "users/alice/links/l1", func(s string) (string, error) {
			_, err := names.ParsePartnerOptIn(s)
			return "", err
		}, false},
		{"partner opt-in without id", "users/alice/partnerOptIns/", func(s string) (string, error) {
			_, err := names.ParsePartnerOptIn(s)
			return "", err
		}, false},
		{"partner opt-in below another", "users/alice/partnerOptIns/o1/x", func(s string) (string, error) {
			_, err := names.ParsePartnerOptIn(s)
			return "", err
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.parse(tt.in)
			switch {
			case tt.wantOK && err != nil:
				t.Fatalf("parse %q: %v", tt.in, err)
			case tt.wantOK && got != tt.in:
				t.Errorf("format(parse(%q)) = %q", tt.in, got)
			case !tt.wantOK && !errors.Is(err, names.ErrMalformed):
				t.Errorf("parse %q: error %v, want ErrMalformed", tt.in, err)
			}
		})
	}

	if got := alice.Transaction("t1"); got.String() != "users/alice/accounts/sandbox~acc~x.1/transactions/t1" || got.Account != alice {
		t.Errorf("Transaction = %+v", got)
	}
	if got, err := names.ParsePartnerOptIn("users/alice/partnerOptIns/o1"); err != nil || got != (names.PartnerOptIn{User: "alice", ID: "o1"}) {
		t.Errorf("ParsePartnerOptIn = %+v, %v", got, err)
	}
	a, err := names.ParseAccount(alice.String())
	if err != nil || a != alice {
		t.Errorf("ParseAccount(%q) = %+v, %v; want %+v (bank account ids may hold the separator)", alice.String(), a, err, alice)
	}
}

func TestUserOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, user string
		ok       bool
	}{
		{"users/alice", "alice", true},
		{"users/alice/links/l1", "alice", true},
		{"users/alice/accounts/sandbox~a/transactions/t", "alice", true},
		{"users/", "", false},
		{"users//links/l1", "", false},
		{"banks/alice", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if user, ok := names.UserOf(tt.in); user != tt.user || ok != tt.ok {
			t.Errorf("UserOf(%q) = %q, %v; want %q, %v", tt.in, user, ok, tt.user, tt.ok)
		}
	}
}

func TestBankResource(t *testing.T) {
	t.Parallel()
	r := names.BankResource{User: "alice", Collection: names.Conversations, BankID: "sandbox", ID: "c1"}
	if got := r.String(); got != "users/alice/conversations/sandbox~c1" {
		t.Fatalf("String() = %q", got)
	}
	back, err := names.ParseBankResource(r.String(), names.Conversations)
	if err != nil || back != r {
		t.Fatalf("ParseBankResource = %+v, %v; want %+v", back, err, r)
	}
	msg := names.Message(r, "m1")
	if msg != "users/alice/conversations/sandbox~c1/messages/m1" {
		t.Fatalf("Message() = %q", msg)
	}
	conv, id, err := names.ParseMessage(msg)
	if err != nil || conv != r || id != "m1" {
		t.Fatalf("ParseMessage = %+v, %q, %v", conv, id, err)
	}
	tests := []struct{ name, in, collection string }{
		{"other collection", "users/alice/cards/sandbox~c1", names.Conversations},
		{"no bank", "users/alice/conversations/c1", names.Conversations},
		{"empty id", "users/alice/conversations/sandbox~", names.Conversations},
		{"too deep", "users/alice/conversations/sandbox~c1/x", names.Conversations},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := names.ParseBankResource(tt.in, tt.collection); !errors.Is(err, names.ErrMalformed) {
				t.Errorf("ParseBankResource(%q) = %v; want ErrMalformed", tt.in, err)
			}
		})
	}
	for _, bad := range []string{"users/alice/conversations/sandbox~c1/messages/", "users/alice/conversations/c1/messages/m1", "users/alice/conversations/sandbox~c1"} {
		if _, _, err := names.ParseMessage(bad); !errors.Is(err, names.ErrMalformed) {
			t.Errorf("ParseMessage(%q) = %v; want ErrMalformed", bad, err)
		}
	}
}
