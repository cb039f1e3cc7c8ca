package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
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
