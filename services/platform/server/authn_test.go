package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func claims(iss, aud, sub string, exp time.Time) jwt.Token {
	tok, err := jwt.NewBuilder().Issuer(iss).Audience([]string{aud}).Subject(sub).
		Claim("azp", testClient).IssuedAt(time.Now()).Expiration(exp).Build()
	if err != nil {
		panic(err)
	}
	return tok
}

func TestTokensThatAreRefused(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	inAnHour := time.Now().Add(time.Hour)
	stranger, err := auth.NewDevIssuer(true, testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	mustSign := func(tok string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The attack: sign with HS256 using the published public key as the
	// HMAC secret, hoping the verifier uses the key bytes for either scheme.
	kid := func() string {
		msg, err := jws.Parse([]byte(mustSign(e.issuer.Mint("alice", testClient, time.Hour))))
		if err != nil {
			t.Fatal(err)
		}
		k, _ := msg.Signatures()[0].ProtectedHeaders().KeyID()
		return k
	}()
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, kid)
	hsWithPublicKey, err := jwt.Sign(claims(testIssuer, testAudience, "alice", inAnHour),
		jwt.WithKey(jwa.HS256(), e.issuer.JWKS(), jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := jwt.Sign(claims(testIssuer, testAudience, "alice", inAnHour), jwt.WithInsecureNoSignature())
	if err != nil {
		t.Fatal(err)
	}
	notYet, err := jwt.NewBuilder().Issuer(testIssuer).Audience([]string{testAudience}).Subject("alice").
		Claim("azp", testClient).NotBefore(time.Now().Add(time.Hour)).Expiration(time.Now().Add(2 * time.Hour)).Build()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		token   string // "" sends no authorization at all
		reason  commonv1.ErrorReason
		message string
	}{
		{"no token", "", commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "missing bearer token"},
		{"garbage", "not-a-jwt", commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "not a signed JWT"},
		{"expired", mustSign(e.issuer.Mint("alice", testClient, -time.Minute)), commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, "expired"},
		{"wrong audience", mustSign(e.issuer.Sign(claims(testIssuer, "someone-else", "alice", inAnHour))), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "wrong audience"},
		{"wrong issuer", mustSign(e.issuer.Sign(claims("https://evil.test", testAudience, "alice", inAnHour))), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "wrong issuer"},
		{"not valid yet", mustSign(e.issuer.Sign(notYet)), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "not valid yet"},
		{"alg none", string(unsigned), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "algorithm is not allowed"},
		{"HS256 signed with the public key", string(hsWithPublicKey), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "algorithm is not allowed"},
		{"signed by an unknown key", mustSign(stranger.Mint("alice", testClient, time.Hour)), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "failed verification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := withPurpose(context.Background(), "ACCOUNT_INFORMATION")
			if tt.token != "" {
				ctx = withToken(ctx, tt.token)
			}
			_, err := e.balance.GetAccount(ctx, getAccount("users/alice/accounts/sandbox~a1"))
			testkit.RequireReason(t, err, tt.reason)
			msg := status.Convert(err).Message()
			if !strings.Contains(msg, tt.message) {
				t.Errorf("message %q does not say %q", msg, tt.message)
			}
			if tt.token != "" && strings.Contains(msg, tt.token) {
				t.Error("the reply quotes the token")
			}
		})
	}
}

func TestAValidTokenIsAccepted(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	resp, err := e.balance.GetAccount(e.as(t, "alice"), getAccount("users/alice/accounts/sandbox~a1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetAccount().GetMaskedNumber().GetLast4(); got != fixtureLast4 {
		t.Errorf("last4 = %q", got)
	}
}

func TestAnotherUsersPathIsRefused(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	bob := e.as(t, "bob")
	t.Run("unary", func(t *testing.T) {
		_, err := e.balance.GetAccount(bob, getAccount("users/alice/accounts/sandbox~a1"))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH)
	})
	t.Run("stream", func(t *testing.T) {
		stream, err := e.shipping.WatchShipments(withPurpose(bob, "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH)
	})
	t.Run("own path streams", func(t *testing.T) {
		stream, err := e.shipping.WatchShipments(e.asFor(t, "alice", "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
		if err != nil {
			t.Fatal(err)
		}
		if msg, err := stream.Recv(); err != nil || msg.GetCursor() != "c1" {
			t.Fatalf("Recv = %v, %v", msg, err)
		}
	})
}

// TestInternalMethodsTakeOnlyInternalTokens: internal methods take the
// internal audience's client-credentials token of a listed bankbridge
// service, and nothing else; no other method takes such a token. A valid
// token of the other audience is CLIENT_NOT_ALLOWED, one of both
// audiences TOKEN_INVALID.
func TestInternalMethodsTakeOnlyInternalTokens(t *testing.T) {
	t.Parallel()
	e := startPartnerExample(t) // internal clients: "consent"
	inAnHour := time.Now().Add(time.Hour)
	sign := func(aud []string, sub, azp string) context.Context {
		tok, err := jwt.NewBuilder().Issuer(testIssuer).Audience(aud).Subject(sub).Claim("azp", azp).
			IssuedAt(time.Now()).Expiration(inAnHour).Build()
		if err != nil {
			t.Fatal(err)
		}
		signed, err := e.srv.Issuer.Sign(tok)
		if err != nil {
			t.Fatal(err)
		}
		return withPurpose(withToken(context.Background(), signed), "ACCOUNT_INFORMATION")
	}
	internal := func(client string) context.Context {
		tok, err := e.srv.Issuer.MintInternal(client, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return withPurpose(withToken(context.Background(), tok), "ACCOUNT_INFORMATION")
	}
	internalAud := e.srv.Issuer.InternalAudience()
	checkConsent := func(ctx context.Context) error {
		_, err := e.internal.CheckConsent(ctx, &consentv1.CheckConsentRequest{User: "users/alice",
			Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION})
		return err
	}
	watchConsent := func(ctx context.Context) error {
		stream, err := e.internal.WatchConsentChanges(ctx, &consentv1.WatchConsentChangesRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		return err
	}
	getAccount := func(ctx context.Context) error {
		_, err := e.balance.GetAccount(ctx, getAccount("users/consent/accounts/sandbox~a1"))
		return err
	}
	watchShipments := func(ctx context.Context) error {
		stream, err := e.shipping.WatchShipments(withPurpose(ctx, "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/consent"})
		if err == nil {
			_, err = stream.Recv()
		}
		return err
	}
	getEndpoint := func(ctx context.Context) error {
		_, err := e.webhooks.GetEndpoint(ctx, &webhooksv1.GetEndpointRequest{Name: names.Client("consent") + "/endpoints/ep1"})
		return err
	}
	tests := []struct {
		name   string
		call   func(context.Context) error
		ctx    context.Context
		reason commonv1.ErrorReason // UNSPECIFIED: reaches the (unimplemented) handler
	}{
		{"a listed service's internal token", checkConsent, internal("consent"), 0},
		{"a listed service's internal token, stream", watchConsent, internal("consent"), 0},
		{"a user's token", checkConsent, e.token(t, "alice", servertest.Client), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"a user's token, stream", watchConsent, e.token(t, "alice", servertest.Client), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"the listed service's public client-credentials token", checkConsent, e.token(t, "consent", "consent"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"a user's token through the listed service", checkConsent, e.token(t, "alice", "consent"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"an internal token of a client that is no bankbridge service", checkConsent, internal(servertest.Client), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"an internal token for a user through the listed service", checkConsent, sign([]string{internalAud}, "alice", "consent"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"a token of both audiences", checkConsent, sign([]string{testAudience, internalAud}, "consent", "consent"), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID},
		{"an internal token on a public method", getAccount, internal("consent"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"an internal token on a public stream", watchShipments, internal("consent"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"an internal token on a client method", getEndpoint, internal("consent"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"a both-audience token on a public method", getAccount, sign([]string{testAudience, internalAud}, "consent", servertest.Client), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.ctx)
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				if status.Code(err) != codes.Unimplemented {
					t.Fatalf("err = %v, want the call to reach the handler (UNIMPLEMENTED)", err)
				}
				return
			}
			meta := testkit.RequireReason(t, err, tt.reason)
			if msg := status.Convert(err).Message(); !strings.Contains(msg, "audience") && !strings.Contains(msg, "client-credentials") {
				t.Errorf("message %q says neither the audience nor the client-credentials token", msg)
			}
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED && meta["client_id"] == "" {
				t.Errorf("ErrorInfo metadata %v does not name the client", meta)
			}
		})
	}
	// None reached a user's access log: refusals go to the security log.
	for _, entry := range e.hooks.recorded() {
		if entry.ClientID == "consent" {
			t.Errorf("a refused internal token reached a user's access log: %+v", entry)
		}
	}
	if !strings.Contains(e.logs.String(), `"rpc.method":"/bankbridge.consent.v1.ConsentCheckService/CheckConsent","bankbridge.reason":"CLIENT_NOT_ALLOWED"`) {
		t.Errorf("no security log line for the refused user token in:\n%s", e.logs.String())
	}
}
