package bootstrap

import "github.com/bankbridge/bankbridge/services/platform/server"

// probes are the dependencies a service's /readyz checks: its database
// (a ping) and its event bus (the NATS connection, and a round trip).
// Vault and the consent service are not among them: secrets are served
// from cache while Vault is briefly down, and a consent service that is
// down fails only the calls that need it, each with a retry hint.
func (b *builder) probes() []server.Probe {
	var probes []server.Probe
	if b.deps.DB != nil {
		probes = append(probes, server.Probe{Name: "database", Check: b.deps.DB.PingContext})
	}
	if b.deps.Bus != nil {
		probes = append(probes, server.Probe{Name: "event bus", Check: b.deps.Bus.Ready})
	}
	return probes
}
