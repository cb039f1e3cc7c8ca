package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"

	"github.com/bankbridge/bankbridge/adapters"
)

// An adapter's answer is a bankbridge reason, and that is all of it
// bankbridge's callers see: the message is the reason's own, written here,
// and of the details only what bankbridge can vouch for passes (a bounded
// RetryInfo, attempts_remaining of SCA_FAILED, an incident id, the paths
// and rule ids of a BadRequest). The adapter's message, the rest of its
// metadata and its descriptions may carry the bank's raw text and stay
// behind. Even what passes is held to more than its shape: an incident id
// or rule id is hex or lower case, and so is an IBAN written in lower case
// ("de89370400440532013000"), or a card number written in digits, so each
// is scanned like a response's text (leak.go), and a field path must name
// a field of the request that was sent.

// logKeyBankID is the log attribute naming a bank, as bankbridge's services
// name it (their telemetry allow-list lets its value through).
const logKeyBankID = "bankbridge.bank_id"

// maxRetryAfter bounds the RetryInfo delay an adapter may ask of callers.
const maxRetryAfter = time.Hour

var (
	incidentIDPattern = regexp.MustCompile(`^[0-9a-f]{16,32}$`)
	fieldPathPattern  = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\[[0-9]+\])?(\.[a-z_][a-z0-9_]*(\[[0-9]+\])?)*$`)
	ruleIDPattern     = regexp.MustCompile(`^[a-z0-9_.]{1,64}$`)
)

// fromAdapter rebuilds an error the adapter answered with a bankbridge
// reason. Two reasons change:
//   - CONSENT_REVOKED and CONSENT_REVOKED_BY_BANK both become
//     CONSENT_REVOKED_BY_BANK: either way the bank no longer honours the
//     consent the call acted under, so its link must end and the user link
//     again.
//   - CREDENTIALS_REJECTED, the bank refusing bankbridge's own credentials,
//     becomes CREDENTIALS_UNAVAILABLE: it is not the caller's doing, and
//     UNAUTHENTICATED would make a client renew a token that is fine.
//     Operators get the log line.
func (bc *bankClient) fromAdapter(ctx context.Context, method string, err error) error {
	reason := apierr.Reason(err)
	switch reason {
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED:
		reason = commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK
	case commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED:
		bc.log.ErrorContext(ctx, "bank rejected bankbridge's credentials; check the bank's secret in Vault",
			slog.String(logKeyBankID, bc.bank.ID))
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE,
			fmt.Sprintf("bankbridge cannot authenticate to bank %s at the moment; try again later", bc.bank.ID),
			apierr.WithRetryAfter(retryAfterCredentials))
	}
	msg, ok := bc.reasonMessage(reason)
	if !ok {
		return bc.unavailable(fmt.Sprintf("its adapter answered outside the protocol (reason %s)", apierr.ReasonString(reason)), adapters.RetryAfterBankFailure)
	}
	st := status.Convert(err)
	md := apierr.Info(err).GetMetadata()
	var opts []apierr.Option
	if reason == commonv1.ErrorReason_ERROR_REASON_SCA_FAILED {
		if n, err := strconv.Atoi(md["attempts_remaining"]); err == nil && n >= 0 && n < 100 {
			opts = append(opts, apierr.WithMetadata("attempts_remaining", strconv.Itoa(n)))
		}
	}
	if id := md["incident_id"]; incidentIDPattern.MatchString(id) && !hidesNumber(id) {
		opts = append(opts, apierr.WithMetadata("incident_id", id))
		msg += "; quote incident " + id + " when reporting it"
	}
	retry, ok := retryAfter(st)
	if c := apierr.Code(reason); !ok && (c == codes.Unavailable || c == codes.ResourceExhausted) {
		retry, ok = adapters.RetryAfterBankFailure, true
	}
	if ok {
		opts = append(opts, apierr.WithRetryAfter(retry))
	}
	if fv := bc.fieldViolations(method, st); len(fv) > 0 {
		opts = append(opts, apierr.WithFieldViolations(fv...))
	}
	return apierr.New(reason, msg, opts...)
}

// reasonMessage is what bankbridge says of bank bc's answer reason; false
// for a reason the adapter protocol does not give adapters (such as
// USER_MISMATCH or AUDIT_UNAVAILABLE, which would mislead callers).
func (bc *bankClient) reasonMessage(reason commonv1.ErrorReason) (string, bool) {
	msg := bc.reasonText(reason)
	return msg, msg != ""
}

func (bc *bankClient) reasonText(reason commonv1.ErrorReason) string {
	id := bc.bank.ID
	switch reason {
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK:
		return fmt.Sprintf("bank %s no longer knows or honours this consent; ask the user to link the bank again", id)
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED:
		return fmt.Sprintf("the consent at bank %s has expired; ask the user to link the bank again", id)
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED:
		return fmt.Sprintf("the consent at bank %s does not cover this data", id)
	case commonv1.ErrorReason_ERROR_REASON_NOT_FOUND:
		return fmt.Sprintf("bank %s knows no such resource under this consent", id)
	case commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED:
		return fmt.Sprintf("bank %s needs the user to log in to the bank before it serves data", id)
	case commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE:
		return fmt.Sprintf("bank %s is unavailable: it failed or did not answer in time", id)
	case commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED:
		return fmt.Sprintf("bank %s's rate limit is reached", id)
	case commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED:
		return fmt.Sprintf("bank %s does not support this", id)
	case commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT:
		return fmt.Sprintf("bank %s refused the request as invalid", id)
	case commonv1.ErrorReason_ERROR_REASON_SCA_FAILED:
		return "the code is wrong"
	case commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED:
		return fmt.Sprintf("bank %s accepts no more codes for this challenge", id)
	case commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED:
		return fmt.Sprintf("the challenge at bank %s has expired", id)
	case commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED:
		return fmt.Sprintf("bank %s saw this idempotency key with a different request", id)
	case commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID:
		return fmt.Sprintf("bank %s refused the cursor; start again without one", id)
	case commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION:
		return fmt.Sprintf("bank %s refused the call in the resource's present state", id)
	case commonv1.ErrorReason_ERROR_REASON_INTERNAL:
		return fmt.Sprintf("the adapter of bank %s failed", id)
	}
	return ""
}

// retryAfter reads a RetryInfo delay, bounded by maxRetryAfter.
func retryAfter(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().IsValid() {
			return min(max(ri.GetRetryDelay().AsDuration(), 0), maxRetryAfter), true
		}
	}
	return 0, false
}

// fieldViolations keeps the field paths and rule ids of a BadRequest that
// are what they claim to be (a path of a field of method's request, a rule
// id hiding no number), with a description of bankbridge's.
func (bc *bankClient) fieldViolations(method string, st *status.Status) []apierr.FieldViolation {
	req := requestDescriptor(method)
	if req == nil {
		return nil
	}
	var out []apierr.FieldViolation
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			if len(v.GetField()) > 128 || !fieldPathPattern.MatchString(v.GetField()) || !fieldOf(req, v.GetField()) ||
				!ruleIDPattern.MatchString(v.GetReason()) || hidesNumber(v.GetReason()) {
				continue
			}
			out = append(out, apierr.FieldViolation{
				Field: v.GetField(), Reason: v.GetReason(),
				Description: fmt.Sprintf("refused by bank %s (rule %s)", bc.bank.ID, v.GetReason()),
			})
		}
	}
	return out
}

// hidesNumber reports whether s, an id the adapter chose, holds a full card
// number or IBAN.
func hidesNumber(s string) bool {
	_, found := adapters.UnmaskedNumber(s)
	return found
}

// requestDescriptor is the request message of a full method name of the
// adapter protocol ("/bankbridge.adapter.v1.BankAdapterService/ListAccounts"),
// or nil.
func requestDescriptor(method string) protoreflect.MessageDescriptor {
	svc := adapterv1.File_bankbridge_adapter_v1_adapter_proto.Services().ByName("BankAdapterService")
	prefix := "/" + string(svc.FullName()) + "/"
	if !strings.HasPrefix(method, prefix) {
		return nil
	}
	m := svc.Methods().ByName(protoreflect.Name(strings.TrimPrefix(method, prefix)))
	if m == nil {
		return nil
	}
	return m.Input()
}

// fieldOf reports whether path, of fieldPathPattern's form, names a field of
// md: each name a field of the message before it, an index only on a
// repeated field.
func fieldOf(md protoreflect.MessageDescriptor, path string) bool {
	segments := strings.Split(path, ".")
	for i, seg := range segments {
		name, index, _ := strings.Cut(seg, "[")
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil || (index != "" && !fd.IsList()) {
			return false
		}
		if i == len(segments)-1 {
			return true
		}
		if fd.IsMap() || fd.Message() == nil {
			return false
		}
		md = fd.Message()
	}
	return false
}
