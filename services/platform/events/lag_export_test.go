package events

import "time"

// SetOutboxClock makes o read now as its clock (when it stamps a row and
// when it measures the lag).
func SetOutboxClock(o *SQLOutbox, now func() time.Time) { o.now = now }
