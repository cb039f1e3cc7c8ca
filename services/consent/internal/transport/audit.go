package transport

import (
	"context"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// Recorder is the consent service's own access.Recorder: the server kit
// records each call to the consent service's public API (links, the access
// log) through it, along the same path as RecordAccess from other services,
// only in process.
type Recorder struct{ check *CheckServer }

var _ access.Recorder = (*Recorder)(nil)

// NewRecorder returns the recorder that appends through check.
func NewRecorder(check *CheckServer) *Recorder { return &Recorder{check: check} }

// Record appends e to its user's access log and waits until it is durable.
func (r *Recorder) Record(ctx context.Context, e access.Entry) error {
	_, err := r.check.RecordAccess(ctx, &consentv1.RecordAccessRequest{User: names.User(e.User), Entry: e.Proto()})
	return err
}
