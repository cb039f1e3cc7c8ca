package faults

import (
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"
)

// silentType is the toxic of a silently dropped connection: the bank's
// side went away (a NAT entry expired, a firewall dropped the flow) and
// nothing says so. Toxiproxy's own timeout toxic silences new
// connections too, which a client would survive by luck of reconnecting;
// this one silences only the connections open when it is added, and lets
// new ones through, so only a client that notices a dead connection
// (keepalive) and makes a new one recovers.
const silentType = "silence_open_connections"

// silenceOpen is that toxic. Toxiproxy runs Pipe once per connection when
// the toxic is added, and again for each connection made later: a Pipe
// that starts before Until is an open connection's.
type silenceOpen struct {
	// Until is a Unix time in milliseconds, shortly after the toxic is
	// added.
	Until int64 `json:"until"`
}

// Pipe drops every byte of an open connection, passes a new one's.
func (t *silenceOpen) Pipe(stub *toxics.ToxicStub) {
	silent := time.Now().UnixMilli() < t.Until
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if !silent {
				stub.Output <- c
			}
		}
	}
}

// registerToxics makes the harness's own toxics known to Toxiproxy, whose
// registry is process-wide; registering again replaces the same type.
func registerToxics() {
	toxics.Register(silentType, new(silenceOpen))
}
