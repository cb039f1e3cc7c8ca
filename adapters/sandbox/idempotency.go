package sandbox

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
)

// idempotent answers a retry of (method, key) with the first answer, fails
// a reuse of key with a different request with IDEMPOTENCY_KEY_REUSED, and
// otherwise runs do: the SDK's [adapters.Idempotent], which keeps only
// final answers, so a transient failure is tried again on retry rather
// than replayed for a day (the sandbox's own, the error rate knob and
// dave's BANK_UNAVAILABLE, come before do and are never kept either). The
// caller holds Bank.mu, so that a key's write happens once however many
// retries race; the answer is a copy, since the sandbox keeps what it
// returns.
func idempotent[Resp proto.Message](i *adapters.Idempotency, method, key string, req proto.Message, do func() (Resp, error)) (Resp, error) {
	resp, err := adapters.Idempotent(context.Background(), i, method, key, req, func(context.Context) (Resp, error) { return do() })
	if err != nil {
		return resp, err
	}
	return clone(resp), nil
}
