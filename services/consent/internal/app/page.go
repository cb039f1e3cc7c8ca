package app

import (
	"strconv"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// The consent service's lists, as their page tokens name them: each token
// is bound to the method, the user's parent and the filters.

func linksList(in ListLinksInput) pagetoken.List {
	return pagetoken.List{
		Method:  "bankbridge.consent.v1.ConsentService/ListLinks",
		Parent:  names.User(in.User),
		Filters: []string{in.State.String(), in.BankID},
	}
}

func optInsList(in ListPartnerOptInsInput) pagetoken.List {
	return pagetoken.List{
		Method: "bankbridge.consent.v1.ConsentService/ListPartnerOptIns",
		Parent: names.User(in.User),
	}
}

func accessLogList(in ListAccessLogInput) pagetoken.List {
	f := in.Filter
	return pagetoken.List{
		Method:  "bankbridge.consent.v1.ConsentService/ListAccessLog",
		Parent:  names.User(in.User),
		Filters: []string{micros(f.Start), micros(f.End), f.Outcome.String()},
	}
}

func micros(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}
