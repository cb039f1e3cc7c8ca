package adapters

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// What an adapter answers is input, not truth: besides the protocol's rules
// (validate.go), every response is scanned for full card numbers and IBANs
// before any service sees it, and one that shows any is refused whole.
//
// Which fields are scanned, and for what, trades leaks against false
// alarms, since a refused response costs the user the whole answer:
//
//   - Text fields (names, descriptions, messages, challenge texts, any string
//     not listed below) are scanned for both card numbers and IBANs: this is
//     where a careless adapter pastes the bank's own wording ("Transfer to DE89
//     3704 …", "Visa 4111 1111 …").
//   - MaskedAccountNumber.display is scanned for both, and may show at most
//     six digits (the last four, plus an IBAN's two check digits), as the
//     conformance kit requires: "•••• 4821" and "DE89 •••• … ••30 00" pass.
//   - Identifiers (fields named *_id, *_ids, *cursor, *_uri, order_number)
//     are scanned for IBANs only. A bank's opaque ids, cursors, order
//     numbers ("302-4567890-1234567") and URI parameters are often long
//     digit strings, and one of 13 to 19 digits passes the Luhn check one
//     time in ten; payment-network tokens that stand in for card numbers are
//     even built to pass it. An IBAN, however, needs a registered country
//     code, that country's exact length, check digits 02-98 and mod 97 = 1,
//     which a random id all but never meets, while an adapter that uses the
//     IBAN as the account id would put it in every resource name and
//     access-log line. A card number used as an id is therefore not caught,
//     here nor by the conformance kit: only the contract's rule that an id
//     is not the number stands against it.
//
// A card number is 13 to 19 digits passing the Luhn check, written
// together or in groups joined by one space, no-break space or hyphen in
// the layouts cards are printed in (4-4-4-4, 4-6-5, ...); a run of more
// than 19 digits is a reference, not a card, and a number written after
// "+" is a phone number. An IBAN (ISO 13616) is a registered country code,
// two check digits and the country's BBAN length of letters and digits,
// single spaces allowed between them, in any case, standing as a word of
// its own, whose mod 97 is 1.

// LeakKind says what a leak shows. Its values are safe as metric attributes.
type LeakKind string

// The kinds of leak.
const (
	// LeakCard is a full card number (PAN).
	LeakCard LeakKind = "card"
	// LeakIBAN is a full IBAN.
	LeakIBAN LeakKind = "iban"
	// LeakMaskedDisplay is a MaskedAccountNumber.display showing more digits
	// than a masked number may (six), without being a full number itself.
	LeakMaskedDisplay LeakKind = "masked_display"
)

// Leak is where a message shows a number unmasked: the field's path (as
// protovalidate writes it, e.g. "accounts[0].display_name") and the kind,
// never the value.
type Leak struct {
	Path string
	Kind LeakKind
}

// FindLeaks returns every field of m that shows a full card number or IBAN,
// or a masked number that shows too much, in path order. Map entries are
// named "field[*]": a key may itself be personal data.
func FindLeaks(m proto.Message) []Leak {
	if m == nil {
		return nil
	}
	var found []Leak
	walkLeaks(m.ProtoReflect(), make(leakPath, 0, 8), &found)
	slices.SortFunc(found, func(a, b Leak) int { return strings.Compare(a.Path, b.Path) })
	return found
}

// UnmaskedNumber reports whether text holds a full IBAN or card number, and
// which (an IBAN first: its digits may pass the Luhn check too).
func UnmaskedNumber(text string) (LeakKind, bool) {
	if containsIBAN(text) {
		return LeakIBAN, true
	}
	if containsCardNumber(text) {
		return LeakCard, true
	}
	return "", false
}

// maxMaskedDigits is the most digits a masked display may show: the last
// four and an IBAN's two check digits.
const maxMaskedDigits = 6

var maskedNumberName = (&commonv1.MaskedAccountNumber{}).ProtoReflect().Descriptor().FullName()

// leakPath is where the walk stands: field names, each with its list index
// (or mapSegment, or noIndex). It is formatted only when a leak is found,
// so a clean response, every response but a leaking one, costs no string
// building.
type leakPath []pathSegment

type pathSegment struct {
	name  string
	index int
}

const (
	noIndex    = -1
	mapSegment = -2
)

func (p leakPath) String() string {
	var b strings.Builder
	for i, seg := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg.name)
		switch {
		case seg.index == mapSegment:
			b.WriteString("[*]")
		case seg.index >= 0:
			fmt.Fprintf(&b, "[%d]", seg.index)
		}
	}
	return b.String()
}

func walkLeaks(m protoreflect.Message, path leakPath, found *[]Leak) {
	masked := m.Descriptor().FullName() == maskedNumberName
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := append(path, pathSegment{name: string(fd.Name()), index: noIndex})
		last := len(p) - 1
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				p[last].index = i
				visitLeaks(fd, l.Get(i), p, masked, found)
			}
		case fd.IsMap():
			p[last].index = mapSegment
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapKey().Kind() == protoreflect.StringKind {
					visitLeaks(fd.MapKey(), k.Value(), p, false, found)
				}
				visitLeaks(fd.MapValue(), mv, p, false, found)
				return true
			})
		default:
			visitLeaks(fd, v, p, masked, found)
		}
		return true
	})
}

func visitLeaks(fd protoreflect.FieldDescriptor, v protoreflect.Value, path leakPath, inMasked bool, found *[]Leak) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		walkLeaks(v.Message(), path, found)
	case protoreflect.StringKind:
		s := v.String()
		switch {
		case identifierField(fd):
			if containsIBAN(s) {
				*found = append(*found, Leak{Path: path.String(), Kind: LeakIBAN})
			}
		default:
			if kind, ok := UnmaskedNumber(s); ok {
				*found = append(*found, Leak{Path: path.String(), Kind: kind})
			} else if inMasked && fd.Name() == "display" && countDigits(s) > maxMaskedDigits {
				*found = append(*found, Leak{Path: path.String(), Kind: LeakMaskedDisplay})
			}
		}
	}
}

// identifierField reports whether fd holds an identifier rather than text:
// it is scanned for IBANs only (see the top of this file).
func identifierField(fd protoreflect.FieldDescriptor) bool {
	name := string(fd.Name())
	return strings.HasSuffix(name, "_id") || strings.HasSuffix(name, "_ids") ||
		strings.HasSuffix(name, "cursor") || strings.HasSuffix(name, "_uri") || name == "order_number"
}

func countDigits(s string) int {
	n := 0
	for i := range len(s) {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// cardSeparator reports whether r may stand between two groups of a printed
// card number.
func cardSeparator(r rune) bool {
	switch r {
	case ' ', '-', '\u00a0', '\u2009', '\u202f', '\u2010', '\u2011', '\u2013':
		return true
	}
	return false
}

// containsCardNumber reports whether s holds 13 to 19 digits passing the
// Luhn check, together or in groups joined by single separators.
func containsCardNumber(s string) bool {
	return len(findCardNumbers([]rune(s))) > 0
}

// span is where a number stands in a text: runes [start, end).
type span struct{ start, end int }

// digitGroup is one run of digits in a text, at runes [start, end).
type digitGroup struct {
	digits     string
	start, end int
}

// findCardNumbers returns where rs holds card numbers: 13 to 19 digits
// passing the Luhn check, together or in groups joined by single
// separators, in order.
func findCardNumbers(rs []rune) []span {
	var found []span
	for i := 0; i < len(rs); {
		if !isDigit(rs[i]) {
			i++
			continue
		}
		// A sequence of digit groups joined by single separators.
		phone := i > 0 && rs[i-1] == '+'
		var groups []digitGroup
		for {
			j := i
			for j < len(rs) && isDigit(rs[j]) {
				j++
			}
			groups = append(groups, digitGroup{digits: string(rs[i:j]), start: i, end: j})
			i = j
			if i+1 < len(rs) && cardSeparator(rs[i]) && isDigit(rs[i+1]) {
				i++
				continue
			}
			break
		}
		for from := 0; !phone && from < len(groups); {
			first, last, ok := cardInGroups(groups[from:])
			if !ok {
				break
			}
			found = append(found, span{groups[from+first].start, groups[from+last].end})
			from += last + 1
		}
	}
	return found
}

// cardInGroups finds the first card number in groups, or in a run of
// them: one group of 13 to 19 digits, or consecutive groups laid out as
// cards are printed (ISO/IEC 7812): fours with a shorter last group
// (4-4-4-4, 4-4-4-4-3, 4-4-4-1), or 4-6-5 and 4-6-4. Other layouts, such as
// a phone number's, are not tried: each try passes the Luhn check one time
// in ten by chance. It returns the first and last group of the number.
func cardInGroups(groups []digitGroup) (first, last int, ok bool) {
	for start, g := range groups {
		if len(g.digits) >= 13 && len(g.digits) <= 19 && luhn(g.digits) {
			return start, start, true
		}
		if len(g.digits) != 4 {
			continue
		}
		digits := g.digits
		for k, next := range groups[start+1:] {
			if len(next.digits) > 4 {
				break
			}
			if digits += next.digits; len(digits) > 19 {
				break
			}
			if len(digits) >= 13 && luhn(digits) {
				return start, start + 1 + k, true
			}
			if len(next.digits) != 4 {
				break
			}
		}
		if rest := groups[start+1:]; len(rest) >= 2 && len(rest[0].digits) == 6 &&
			(len(rest[1].digits) == 5 || len(rest[1].digits) == 4) && luhn(g.digits+rest[0].digits+rest[1].digits) {
			return start, start + 2, true
		}
	}
	return 0, 0, false
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// luhn reports whether digits pass the Luhn (mod 10) check.
func luhn(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// ibanLengths is each registered country's IBAN length, from the ISO 13616
// IBAN registry (SWIFT). A country code not in it starts no IBAN.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
	"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
	"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
	"GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
	"LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
	"NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
	"RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

// ibanSeparator reports whether r may stand between two characters of a
// printed IBAN.
func ibanSeparator(r rune) bool { return r == ' ' || r == '\u00a0' || r == '\u202f' }

func isAlnum(r rune) bool {
	return isDigit(r) || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z')
}

func upper(r rune) rune {
	if r >= 'a' && r <= 'z' {
		return r - 'a' + 'A'
	}
	return r
}

// containsIBAN reports whether s holds a valid IBAN, in any case, with
// single spaces allowed between its characters.
func containsIBAN(s string) bool {
	return len(findIBANs([]rune(s))) > 0
}

// findIBANs returns where rs holds valid IBANs, in any case, with single
// spaces allowed between their characters, in order.
func findIBANs(rs []rune) []span {
	var found []span
	for i := 0; i+4 <= len(rs); i++ {
		if i > 0 && isAlnum(rs[i-1]) {
			continue // not the start of a word
		}
		if !isAlnum(rs[i]) || isDigit(rs[i]) || !isAlnum(rs[i+1]) || isDigit(rs[i+1]) {
			continue
		}
		n, ok := ibanLengths[string([]rune{upper(rs[i]), upper(rs[i+1])})]
		if !ok {
			continue
		}
		if iban, used, ok := takeIBAN(rs[i:], n); ok && ibanValid(iban) {
			found = append(found, span{i, i + used})
			i += used - 1
		}
	}
	return found
}

// takeIBAN reads n letters and digits from the start of rs, skipping single
// separators between them, and requires that the word ends there; used
// is how many runes of rs it read.
func takeIBAN(rs []rune, n int) (iban []rune, used int, ok bool) {
	out := make([]rune, 0, n)
	i := 0
	for len(out) < n {
		switch {
		case i < len(rs) && isAlnum(rs[i]):
			out = append(out, upper(rs[i]))
			i++
		case len(out) > 0 && i+1 < len(rs) && ibanSeparator(rs[i]) && isAlnum(rs[i+1]):
			i++
		default:
			return nil, 0, false
		}
	}
	return out, i, i == len(rs) || !isAlnum(rs[i])
}

// ibanValid checks an IBAN's check digits (02 to 98) and ISO 7064 mod 97-10
// checksum; iban is upper case letters and digits, of its country's length.
func ibanValid(iban []rune) bool {
	if !isDigit(iban[2]) || !isDigit(iban[3]) {
		return false
	}
	if check := int(iban[2]-'0')*10 + int(iban[3]-'0'); check < 2 || check > 98 {
		return false
	}
	rem := 0
	for _, r := range append(slices.Clone(iban[4:]), iban[:4]...) {
		if isDigit(r) {
			rem = (rem*10 + int(r-'0')) % 97
		} else {
			rem = (rem*100 + int(r-'A') + 10) % 97
		}
	}
	return rem == 1
}
