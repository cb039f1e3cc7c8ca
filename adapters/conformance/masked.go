package conformance

import (
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// UnmaskedNumbers returns where m holds what must never leave a bank: the
// path of every string field that contains a full card number (13 to 19
// digits that pass the Luhn check, spaces or hyphens allowed between them)
// or a full IBAN (one that passes its mod-97 check), and of every
// MaskedAccountNumber whose display shows more than the last four
// characters (plus an IBAN's two check digits). Ids and cursors are not
// scanned: a bank's opaque ids may be long digit strings. Paths are
// sorted, so a report reads the same on every run.
func UnmaskedNumbers(m proto.Message) []string {
	var found []string
	walk(m.ProtoReflect(), "", &found)
	slices.Sort(found)
	return found
}

var maskedName = (&commonv1.MaskedAccountNumber{}).ProtoReflect().Descriptor().FullName()

func walk(m protoreflect.Message, path string, found *[]string) {
	if m.Descriptor().FullName() == maskedName {
		checkMasked(m.Interface().(*commonv1.MaskedAccountNumber), path, found)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := string(fd.Name())
		if path != "" {
			p = path + "." + p
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				visit(fd, l.Get(i), fmt.Sprintf("%s[%d]", p, i), found)
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(fd.MapValue(), mv, fmt.Sprintf("%s[%v]", p, k.Interface()), found)
				return true
			})
		default:
			visit(fd, v, p, found)
		}
		return true
	})
}

func visit(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string, found *[]string) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		walk(v.Message(), path, found)
	case protoreflect.StringKind:
		if opaque(fd) {
			return
		}
		if containsFullNumber(v.String()) {
			*found = append(*found, path)
		}
	}
}

// opaque reports whether a field holds an id or cursor rather than text.
func opaque(fd protoreflect.FieldDescriptor) bool {
	name := string(fd.Name())
	return strings.HasSuffix(name, "_id") || strings.HasSuffix(name, "_ids") || strings.HasSuffix(name, "cursor")
}

func checkMasked(n *commonv1.MaskedAccountNumber, path string, found *[]string) {
	digits := 0
	for _, r := range n.GetDisplay() {
		if unicode.IsDigit(r) {
			digits++
		}
	}
	if digits > 6 || containsFullNumber(n.GetDisplay()) {
		*found = append(*found, path+".display")
	}
}

// containsFullNumber reports whether s holds a full card number or IBAN.
func containsFullNumber(s string) bool {
	for _, run := range digitRuns(s) {
		if len(run) >= 13 && len(run) <= 19 && luhn(run) {
			return true
		}
	}
	for _, m := range ibanCandidate.FindAllString(strings.ToUpper(s), -1) {
		if ibanValid(strings.ReplaceAll(m, " ", "")) {
			return true
		}
	}
	return false
}

// digitRuns returns the runs of digits in s, joining groups separated by one
// space or hyphen, as card numbers are printed.
func digitRuns(s string) []string {
	var runs []string
	var cur strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r >= '0' && r <= '9':
			cur.WriteRune(r)
		case (r == ' ' || r == '-') && cur.Len() > 0 && i+1 < len(rs) && rs[i+1] >= '0' && rs[i+1] <= '9':
			// a separator inside a number
		default:
			if cur.Len() > 0 {
				runs = append(runs, cur.String())
				cur.Reset()
			}
		}
	}
	if cur.Len() > 0 {
		runs = append(runs, cur.String())
	}
	return runs
}

func luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

var ibanCandidate = regexp.MustCompile(`[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}`)

// ibanValid checks an IBAN's ISO 13616 mod-97 checksum.
func ibanValid(iban string) bool {
	if len(iban) < 15 || len(iban) > 34 {
		return false
	}
	rearranged := iban[4:] + iban[:4]
	var numeric strings.Builder
	for _, r := range rearranged {
		switch {
		case r >= '0' && r <= '9':
			numeric.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			fmt.Fprintf(&numeric, "%d", r-'A'+10)
		default:
			return false
		}
	}
	n, ok := new(big.Int).SetString(numeric.String(), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}
