package app

import (
	"slices"
	"strings"
	"unicode"
)

// Merchant names differ between a receipt and a bank statement: "Nordic
// Outdoor Online" on the receipt, "NORDIC OUTDOOR" on the card statement;
// "Café Lumière GmbH" and "CAFE LUMIERE". Normalising makes them
// comparable: lowercase, accents and punctuation gone, legal forms and web
// suffixes dropped, what is left as a set of words.

// noiseWords are legal forms and web or channel suffixes that say nothing
// about which merchant it is.
var noiseWords = map[string]bool{
	"gmbh": true, "mbh": true, "ag": true, "kg": true, "ug": true, "ohg": true, "ev": true,
	"ltd": true, "limited": true, "inc": true, "incorporated": true, "llc": true, "llp": true,
	"plc": true, "corp": true, "corporation": true, "co": true, "company": true,
	"sa": true, "sas": true, "sarl": true, "srl": true, "spa": true, "bv": true, "nv": true,
	"online": true, "shop": true, "store": true, "webshop": true, "eshop": true,
	"com": true, "net": true, "org": true, "www": true, "https": true, "http": true,
}

// foldRune turns a letter with a diacritic into its base letters
// (ü → u, ß → ss, æ → ae); other runes come back as they are.
func foldRune(r rune) string {
	if r < 0x80 {
		return string(r)
	}
	for base, variants := range accentFolds {
		if strings.ContainsRune(variants, r) {
			return base
		}
	}
	return string(r)
}

// accentFolds maps base letters to their accented forms (lowercase: names
// are lowered first), covering Latin-1 and Latin Extended-A.
var accentFolds = map[string]string{
	"a": "àáâãäåāăą", "c": "çćĉċč", "d": "ďđð", "e": "èéêëēĕėęě", "g": "ĝğġģ", "h": "ĥħ",
	"i": "ìíîïĩīĭįı", "j": "ĵ", "k": "ķ", "l": "ĺļľŀł", "n": "ñńņňŉ", "o": "òóôõöøōŏő",
	"r": "ŕŗř", "s": "śŝşšſ", "t": "ţťŧ", "u": "ùúûüũūŭůűų", "w": "ŵ", "y": "ýÿŷ", "z": "źżž",
	"ss": "ß", "ae": "æ", "oe": "œ", "th": "þ",
}

// merchantTokens returns the normalised words of a merchant name, sorted
// and without repeats.
func merchantTokens(name string) []string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r == '&':
			b.WriteString(" and ")
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteString(foldRune(r))
		case unicode.Is(unicode.Mn, r):
			// a combining accent of a decomposed letter
		default:
			b.WriteByte(' ') // punctuation, including the dot of ".com"
		}
	}
	var words []string
	for w := range strings.FieldsSeq(b.String()) {
		if !noiseWords[w] {
			words = append(words, w)
		}
	}
	slices.Sort(words)
	return slices.Compact(words)
}

// MerchantKey is a merchant name in the form merchant filters compare:
// its normalised words, sorted, separated by spaces. A name made of noise
// words alone keys as its lowercase words.
func MerchantKey(name string) string {
	if words := merchantTokens(name); len(words) > 0 {
		return strings.Join(words, " ")
	}
	return strings.Join(strings.Fields(strings.ToLower(name)), " ")
}

// MerchantsAgree reports whether two merchant names can be the same
// merchant: their normalised word sets are equal, or one holds the other.
// A name with no word left agrees with nothing.
func MerchantsAgree(a, b string) bool {
	x, y := merchantTokens(a), merchantTokens(b)
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	if len(x) > len(y) {
		x, y = y, x
	}
	for _, w := range x {
		if _, found := slices.BinarySearch(y, w); !found {
			return false
		}
	}
	return true
}
