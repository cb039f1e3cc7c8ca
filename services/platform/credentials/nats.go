package credentials

import (
	"context"
	"fmt"
)

// NATSPath is where, under the mount, the credentials bankbridge connects
// to a NATS cluster with live: bankbridge/nats, one of
//
//	creds     the content of a NATS .creds file (user JWT and NKey seed)
//	token     a server authorization token
//	user, password
//
// Operators write it; services only read it (deploy/vault/policies).
const NATSPath = "nats"

// NATS reads the NATS credentials at <Mount>/nats. It is not cached: the
// event bus reads it at each connection to NATS, so a rotated secret is
// used from the next connection on, without a restart. Errors match
// ErrNotFound or ErrUnavailable and never carry a value.
func (p *Provider) NATS(ctx context.Context) (Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	s, err := p.readPath(ctx, NATSPath, NATSPath)
	if err != nil {
		return Secret{}, fmt.Errorf("read %s/%s: %w", p.cfg.Mount, NATSPath, err)
	}
	return s, nil
}
