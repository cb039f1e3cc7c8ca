// Package transport serves bankbridge.support.v1.SupportService over gRPC:
// it turns requests into the app's domain calls and the answers back
// into the contract's messages (internal/supportpb), behind the server
// kit, whose access check has already decided who calls, for whom and
// under which consent (access.GrantFrom). Conversations are served in
// conversations.go and stream.go; fraud reports, cards and alerts in
// fraud*.go, cards*.go and alerts*.go.
package transport

import (
	"context"

	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// HubTypes are the event types the process's stream hub reads: every
// support event a stream serves (conversations, alerts).
var HubTypes = []string{"support.>"}

// Server serves bankbridge.support.v1.SupportService. Methods not yet
// implemented answer UNIMPLEMENTED through the embedded server.
type Server struct {
	supportv1.UnimplementedSupportServiceServer
	app  *app.Service
	feed stream.Feed
}

var _ supportv1.SupportServiceServer = (*Server)(nil)

// New serves a, streaming from feed.
func New(a *app.Service, feed stream.Feed) *Server { return &Server{app: a, feed: feed} }

// grant is the call's grant in the app's terms.
func grant(ctx context.Context) app.Grant {
	g := access.GrantFrom(ctx)
	return app.Grant{
		User: g.User, Client: g.Principal.Client, BankID: g.BankID, Link: g.Link, BankConsentID: g.BankConsentID,
	}
}
