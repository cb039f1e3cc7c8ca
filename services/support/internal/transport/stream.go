package transport

import (
	"errors"
	"fmt"

	"google.golang.org/grpc"

	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/supportpb"
)

// errStreamDone ends a conversation's stream after its last event.
var errStreamDone = errors.New("conversation closed")

// StreamConversation streams one conversation's events from the bus: its
// messages, thread control changes and its closing, after which the
// stream ends with OK.
func (s *Server) StreamConversation(req *supportv1.StreamConversationRequest, srv grpc.ServerStreamingServer[supportv1.StreamConversationResponse]) error {
	ctx := srv.Context()
	k, err := conversationOf(req.GetName())
	if err != nil {
		return err
	}
	c, err := s.app.GetConversation(ctx, grant(ctx), k)
	if err != nil {
		return err
	}
	if c.State == app.StateClosed && req.GetResumeCursor() == "" {
		// Nothing will happen from now on: the stream ends at once.
		return nil
	}
	name := k.Name()
	err = stream.Serve(&untilClosed{ServerStreamingServer: srv}, s.feed, stream.Options[supportv1.StreamConversationResponse]{
		Types:  app.ConversationTypes(),
		Cursor: req.GetResumeCursor(),
		ToMessage: func(d events.Delivered) (*supportv1.StreamConversationResponse, error) {
			if d.Resource != name {
				return nil, nil // another conversation of the user
			}
			resp, err := supportpb.StreamEvent(d.Data)
			if err != nil {
				return nil, fmt.Errorf("read %s event: %w", d.Type, err)
			}
			resp.Cursor = d.Cursor
			return resp, nil
		},
	})
	if errors.Is(err, errStreamDone) {
		return nil
	}
	return err
}

// untilClosed ends the stream once it has sent conversation_closed.
type untilClosed struct {
	grpc.ServerStreamingServer[supportv1.StreamConversationResponse]
}

// Send sends resp, and after the closing event ends the stream.
func (u *untilClosed) Send(resp *supportv1.StreamConversationResponse) error {
	if err := u.ServerStreamingServer.Send(resp); err != nil {
		return err
	}
	if resp.GetConversationClosed() != nil {
		return errStreamDone
	}
	return nil
}
