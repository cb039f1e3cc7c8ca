package events

import (
	"fmt"
	"strings"
)

// Validate reports a Types entry that is neither an event type nor a
// pattern of them ('*' for one token, a last '>' for the rest).
func (f Filter) Validate() error {
	for _, t := range f.Types {
		if err := checkType(t, true); err != nil {
			return fmt.Errorf("events: filter: %w", err)
		}
	}
	return nil
}

// MatchType reports whether pattern, a Filter.Types entry, selects events
// of type t, as the bus's subjects select them: the same type, or token by
// token with '*' for any one token and a last '>' for one or more.
func MatchType(pattern, t string) bool {
	if pattern == t {
		return true
	}
	if !strings.ContainsAny(pattern, "*>") {
		return false
	}
	return subjectMatch(pattern, t)
}
