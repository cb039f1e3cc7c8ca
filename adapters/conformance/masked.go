package conformance

import (
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
)

// UnmaskedNumbers returns where m holds what must never leave a bank: the
// path of every field that shows a full card number or IBAN, and of every
// MaskedAccountNumber whose display shows more than the last four
// characters (plus an IBAN's two check digits). The rule is the one
// bankbridge's registry enforces on every response at run time
// ([adapters.FindLeaks]), so an adapter that passes the kit is not refused
// in production: text is scanned for both kinds; ids, cursors, URIs and
// order numbers for IBANs only, since a bank's opaque ids may be long digit
// strings that pass the Luhn check by chance. Paths are sorted, so a report
// reads the same on every run.
func UnmaskedNumbers(m proto.Message) []string {
	var paths []string
	for _, l := range adapters.FindLeaks(m) {
		paths = append(paths, l.Path)
	}
	return paths
}
