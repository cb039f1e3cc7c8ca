package names_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

// FuzzParse feeds any string to every parser. None may panic; a name one
// accepts formats back to exactly the string it read (so a parsed name
// can never stand for a different resource than the one asked for), and
// the helpers that look into a name without parsing it (UserOf, ClientOf,
// BankOf, KindOf) agree with the parser that accepted it. A refusal wraps
// ErrMalformed.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"users/alice",
		"users/alice/accounts/sandbox~acc-1",
		"users/alice/accounts/sandbox~acc~x.1/balance",
		"users/alice/accounts/sandbox~acc-1/transactions/tx-9",
		"users/alice/links/lnk_01J8ZK",
		"users/alice/partnerOptIns/opt-1",
		"users/alice/conversations/sandbox~conv-1",
		"users/alice/conversations/sandbox~conv-1/messages/msg-1",
		"users/alice/cards/sandbox~card-1",
		"users/alice/alerts/sandbox~alert-1",
		"users/alice/fraudReports/sandbox~fr-1",
		"clients/chat-app",
		"clients/chat-app/endpoints/ep-1",
		"clients/chat-app/endpoints/ep-1/deliveries/d-1",
		"", "users/", "users//accounts/x~y", "users/alice/accounts/~acc", "users/alice/accounts/sandbox~",
		"users/messages/conversations/b~messages/messages/messages",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		check := func(parser string, err error, kind string, format func() string) {
			t.Helper()
			if err != nil {
				if !errors.Is(err, names.ErrMalformed) {
					t.Fatalf("%s(%q): error %v does not wrap ErrMalformed", parser, name, err)
				}
				return
			}
			if got := format(); got != name {
				t.Fatalf("%s(%q) formats back as %q", parser, name, got)
			}
			if kind != "" {
				if got := names.KindOf(name); got != kind {
					t.Fatalf("%s accepted %q, but KindOf says %q, not %q", parser, name, got, kind)
				}
			}
		}
		userOf := func(parser, want string) {
			t.Helper()
			if got, ok := names.UserOf(name); !ok || got != want {
				t.Fatalf("%s(%q) read user %q, but UserOf says %q, %v", parser, name, want, got, ok)
			}
		}
		bankOf := func(parser, want string) {
			t.Helper()
			if got, ok := names.BankOf(name); !ok || got != want {
				t.Fatalf("%s(%q) read bank %q, but BankOf says %q, %v", parser, name, want, got, ok)
			}
		}

		u, err := names.ParseUser(name)
		check("ParseUser", err, "resource", func() string { return names.User(u) })
		if err == nil {
			userOf("ParseUser", u)
		}

		a, err := names.ParseAccount(name)
		check("ParseAccount", err, "account", a.String)
		if err == nil {
			userOf("ParseAccount", a.User)
			bankOf("ParseAccount", a.BankID)
		}
		b, err := names.ParseBalance(name)
		check("ParseBalance", err, "balance", b.Balance)
		if err == nil {
			userOf("ParseBalance", b.User)
			bankOf("ParseBalance", b.BankID)
		}
		tx, err := names.ParseTransaction(name)
		check("ParseTransaction", err, "transaction", tx.String)
		if err == nil {
			userOf("ParseTransaction", tx.Account.User)
			bankOf("ParseTransaction", tx.Account.BankID)
			if tx.Account.Transaction(tx.ID) != tx {
				t.Fatalf("Account.Transaction does not rebuild %+v", tx)
			}
		}

		l, err := names.ParseLink(name)
		check("ParseLink", err, "link", l.String)
		if err == nil {
			userOf("ParseLink", l.User)
		}
		o, err := names.ParsePartnerOptIn(name)
		check("ParsePartnerOptIn", err, "partner opt-in", o.String)
		if err == nil {
			userOf("ParsePartnerOptIn", o.User)
		}

		for collection, kind := range map[string]string{
			names.Conversations: "conversation", names.Cards: "card", names.Alerts: "alert", names.FraudReports: "fraud report",
		} {
			r, err := names.ParseBankResource(name, collection)
			check("ParseBankResource/"+collection, err, kind, r.String)
			if err == nil {
				userOf("ParseBankResource", r.User)
				bankOf("ParseBankResource", r.BankID)
				if r.Collection != collection {
					t.Fatalf("ParseBankResource(%q, %q) read collection %q", name, collection, r.Collection)
				}
			}
		}
		conv, msg, err := names.ParseMessage(name)
		check("ParseMessage", err, "", func() string { return names.Message(conv, msg) })
		if err == nil {
			userOf("ParseMessage", conv.User)
			bankOf("ParseMessage", conv.BankID)
			if conv.Collection != names.Conversations {
				t.Fatalf("ParseMessage(%q) read a message of a %q", name, conv.Collection)
			}
		}

		clientOf := func(parser, want string) {
			t.Helper()
			if got, ok := names.ClientOf(name); !ok || got != want {
				t.Fatalf("%s(%q) read client %q, but ClientOf says %q, %v", parser, name, want, got, ok)
			}
		}
		c, err := names.ParseClient(name)
		check("ParseClient", err, "", func() string { return names.Client(c) })
		if err == nil {
			clientOf("ParseClient", c)
		}
		e, err := names.ParseEndpoint(name)
		check("ParseEndpoint", err, "", e.String)
		if err == nil {
			clientOf("ParseEndpoint", e.Client)
		}
		d, err := names.ParseDelivery(name)
		check("ParseDelivery", err, "", d.String)
		if err == nil {
			clientOf("ParseDelivery", d.Endpoint.Client)
			if d.Endpoint.Delivery(d.ID) != d {
				t.Fatalf("Endpoint.Delivery does not rebuild %+v", d)
			}
		}

		// What lies outside users/ and clients/ belongs to nobody.
		if _, ok := names.UserOf(name); ok && !strings.HasPrefix(name, "users/") {
			t.Fatalf("UserOf(%q) found a user outside users/", name)
		}
		if _, ok := names.ClientOf(name); ok && !strings.HasPrefix(name, "clients/") {
			t.Fatalf("ClientOf(%q) found a client outside clients/", name)
		}
	})
}

// FuzzFormat builds every kind of name from ids and parses it back: the
// ids come back unchanged whenever they are ids a name can hold (not
// empty, no "/", and for a bank id no "~", which banks.yaml refuses).
// Otherwise the parse is refused or reads other ids, never panics.
func FuzzFormat(f *testing.F) {
	f.Add("alice", "sandbox", "acc-1", "tx-9")
	f.Add("bob", "sandbox-local", "acc~x.1", "msg_01J8ZK")
	f.Add("messages", "b", "messages", "messages")
	f.Add("u", "bank", "a/b", "")
	f.Fuzz(func(t *testing.T, user, bank, bankID2, id string) {
		idOK := func(s string) bool { return s != "" && !strings.Contains(s, "/") }
		userOK, bankOK := idOK(user), idOK(bank) && !strings.Contains(bank, names.BankSeparator)
		acctOK, idIsOK := idOK(bankID2), idOK(id)
		roundTrip := func(kind string, valid bool, got, want any, err error) {
			t.Helper()
			if valid && (err != nil || got != want) {
				t.Fatalf("%s %+v parses back as %+v, %v", kind, want, got, err)
			}
		}

		if got, err := names.ParseUser(names.User(user)); userOK {
			roundTrip("user", true, got, user, err)
		}
		acct := names.Account{User: user, BankID: bank, BankAccountID: bankID2}
		valid := userOK && bankOK && acctOK
		got, err := names.ParseAccount(acct.String())
		roundTrip("account", valid, got, acct, err)
		got, err = names.ParseBalance(acct.Balance())
		roundTrip("balance", valid, got, acct, err)
		tx := acct.Transaction(id)
		gotTx, err := names.ParseTransaction(tx.String())
		roundTrip("transaction", valid && idIsOK, gotTx, tx, err)

		link := names.Link{User: user, ID: id}
		gotLink, err := names.ParseLink(link.String())
		roundTrip("link", userOK && idIsOK, gotLink, link, err)
		optIn := names.PartnerOptIn{User: user, ID: id}
		gotOptIn, err := names.ParsePartnerOptIn(optIn.String())
		roundTrip("partner opt-in", userOK && idIsOK, gotOptIn, optIn, err)

		for _, collection := range []string{names.Conversations, names.Cards, names.Alerts, names.FraudReports} {
			r := names.BankResource{User: user, Collection: collection, BankID: bank, ID: bankID2}
			gotR, err := names.ParseBankResource(r.String(), collection)
			roundTrip(collection, valid, gotR, r, err)
			if valid {
				if b, ok := names.BankOf(r.String()); !ok || b != bank {
					t.Fatalf("BankOf(%q) = %q, %v; want %q", r.String(), b, ok, bank)
				}
			}
			if collection == names.Conversations {
				conv, msg, err := names.ParseMessage(names.Message(r, id))
				roundTrip("message", valid && idIsOK, [2]any{conv, msg}, [2]any{r, id}, err)
			}
		}

		ep := names.Endpoint{Client: user, ID: id}
		gotEp, err := names.ParseEndpoint(ep.String())
		roundTrip("endpoint", userOK && idIsOK, gotEp, ep, err)
		del := ep.Delivery(bankID2)
		gotDel, err := names.ParseDelivery(del.String())
		roundTrip("delivery", userOK && idIsOK && acctOK, gotDel, del, err)
		if gotClient, err := names.ParseClient(names.Client(user)); userOK {
			roundTrip("client", true, gotClient, user, err)
		}
	})
}
