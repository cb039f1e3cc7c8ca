package events

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// SetAfterPublish makes r run f between publishing a batch and marking it
// published; an error from f returns from the batch without marking, as a
// relay killed at that point would.
func SetAfterPublish(r *Relay, f func() error) { r.afterPublish = f }

// StreamInfo is the bus's stream as the server has it now.
func StreamInfo(ctx context.Context, b *Bus) (*jetstream.StreamInfo, error) {
	return b.stream.Info(ctx)
}

// JetStream is the bus's JetStream client.
func JetStream(b *Bus) jetstream.JetStream { return b.js }

// Backoff exposes backoff.
var Backoff = backoff

// SubjectMatch exposes subjectMatch.
var SubjectMatch = subjectMatch

// LockSpaceRelay is the first key of the relay's advisory lock.
const LockSpaceRelay = lockSpaceRelay
