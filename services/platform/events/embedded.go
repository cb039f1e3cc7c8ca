package events

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a NATS server with JetStream embedded in the process: the bus
// of `make dev` and of a service started without --nats-url. It listens on
// 127.0.0.1, so other processes can connect to URL.
type Server struct {
	ns *server.Server
}

type embeddedConfig struct {
	addr  string
	token string
}

// EmbeddedOption tunes Embedded.
type EmbeddedOption func(*embeddedConfig)

// WithListenAddr sets the host:port to listen on; default 127.0.0.1 on a
// free port.
func WithListenAddr(addr string) EmbeddedOption {
	return func(c *embeddedConfig) { c.addr = addr }
}

// WithToken makes the server accept only clients that present token.
func WithToken(token string) EmbeddedOption {
	return func(c *embeddedConfig) { c.token = token }
}

// embeddedStartTimeout bounds the server's start (JetStream recovers the
// stream from dir).
const embeddedStartTimeout = 30 * time.Second

// Embedded starts a NATS server with JetStream keeping its streams in
// files under dir. Close stops it.
func Embedded(dir string, opts ...EmbeddedOption) (*Server, error) {
	if dir == "" {
		return nil, errors.New("events: the embedded NATS server needs a directory")
	}
	c := embeddedConfig{addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(&c)
	}
	host, portText, err := net.SplitHostPort(c.addr)
	if err != nil {
		return nil, fmt.Errorf("events: embedded NATS address %q: %w", c.addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("events: embedded NATS address %q: bad port", c.addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		ServerName:    "bankbridge-embedded",
		Host:          host,
		Port:          port,
		JetStream:     true,
		StoreDir:      dir,
		Authorization: c.token,
		NoSigs:        true, // the process's own signal handling stops it
		NoLog:         true,
		HTTPPort:      0, // no monitoring listener
	})
	if err != nil {
		return nil, fmt.Errorf("events: embedded NATS: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(embeddedStartTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("events: embedded NATS not ready after %s", embeddedStartTimeout)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		return nil, errors.New("events: embedded NATS started without JetStream")
	}
	return &Server{ns: ns}, nil
}

// URL is where clients connect, e.g. nats://127.0.0.1:41223.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Close stops the server and waits until it has.
func (s *Server) Close() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
