package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Stream defaults: the one stream every bankbridge event goes to.
const (
	DefaultStream        = "BANKBRIDGE"
	DefaultSubjectPrefix = "bankbridge.events"
	// DefaultMaxAge is how long the stream keeps events: a cursor older
	// than this is expired, and replays reach this far back.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultDuplicates is JetStream's duplicate window: a republish of
	// the same event id within it (a relay that crashed between publishing
	// and marking) is dropped.
	DefaultDuplicates = 2 * time.Minute
)

// StreamConfig describes the stream. Every service and replica must use
// the same one: each creates or updates it at start.
type StreamConfig struct {
	// Name is the stream's name; default DefaultStream.
	Name string
	// SubjectPrefix prefixes every subject; the stream holds
	// <SubjectPrefix>.>. Default DefaultSubjectPrefix.
	SubjectPrefix string
	// MaxAge is the stream's retention; default DefaultMaxAge.
	MaxAge time.Duration
	// Duplicates is the duplicate window; default DefaultDuplicates.
	Duplicates time.Duration
	// Replicas is the number of copies in a NATS cluster; default 1.
	Replicas int
}

func (s StreamConfig) withDefaults() StreamConfig {
	if s.Name == "" {
		s.Name = DefaultStream
	}
	if s.SubjectPrefix == "" {
		s.SubjectPrefix = DefaultSubjectPrefix
	}
	if s.MaxAge == 0 {
		s.MaxAge = DefaultMaxAge
	}
	if s.Duplicates == 0 {
		s.Duplicates = DefaultDuplicates
	}
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	return s
}

// Credentials authenticate to NATS; set one kind: Creds, Token, or User
// and Password.
type Credentials struct {
	// Creds is the content of a NATS .creds file: a user JWT and its NKey
	// seed (decentralised auth, what a NATS operator issues).
	Creds string
	// Token is a server authorization token.
	Token string
	// User and Password are a user's password credentials.
	User, Password string
}

func (c Credentials) kind() string {
	switch {
	case c.Creds != "":
		return "creds"
	case c.Token != "":
		return "token"
	case c.User != "":
		return "user"
	}
	return ""
}

// Config is how to reach the bus.
type Config struct {
	// URL is the NATS server or cluster, e.g. nats://nats-0:4222,nats://nats-1:4222.
	URL string
	// Name is the connection's name on the server (the service).
	Name string
	// SubjectKey keys the users' pseudonymous references (see Refs): the
	// shared --subject-key.
	SubjectKey []byte
	// Stream is the stream's shape; zero values take the defaults.
	Stream StreamConfig
	// Credentials, when set, is asked for the credentials at every
	// (re)connect, so rotated credentials are used from the next one
	// without a restart; the kind (Creds, Token or User) found at Connect
	// stays. Nil: connect without credentials.
	Credentials func(ctx context.Context) (Credentials, error)
	// Logger receives connection events; default: none.
	Logger *slog.Logger
}

// Bus is bankbridge's event bus over NATS JetStream: one stream, one
// subject per event, <prefix>.<userRef>.<type>. It is safe for concurrent
// use; Close releases it.
type Bus struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string
	prefix  string
	created int64 // the stream's creation, unix ns: its incarnation in cursors
	refs    Refs
	log     *slog.Logger
	// multiFilter: the server filters a consumer on several subjects.
	multiFilter bool
}

// credentialsTimeout bounds one read of the credentials at a (re)connect.
const credentialsTimeout = 10 * time.Second

// Connect connects to NATS at cfg.URL, creates or updates the stream, and
// returns the bus. When the account may not manage streams, an existing
// stream is used as it is.
func Connect(ctx context.Context, cfg Config) (*Bus, error) {
	if cfg.URL == "" {
		return nil, errors.New("events: no NATS URL")
	}
	if len(cfg.SubjectKey) == 0 {
		return nil, errors.New("events: no subject key for the users' references")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sc := cfg.Stream.withDefaults()
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost; reconnecting", slog.String("error", err.Error()))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection restored", slog.String("server.address", nc.ConnectedAddr()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS error", slog.String("error", err.Error()))
		}),
	}
	if cfg.Credentials != nil {
		o, err := authOption(ctx, cfg.Credentials, log)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("events: connect to NATS: %w", err)
	}
	b, err := newBus(ctx, nc, sc, cfg.SubjectKey, log)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

func newBus(ctx context.Context, nc *nats.Conn, sc StreamConfig, key []byte, log *slog.Logger) (*Bus, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4*maxRelayBatch))
	if err != nil {
		return nil, fmt.Errorf("events: jetstream: %w", err)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        sc.Name,
		Description: "bankbridge events: one subject per event, <prefix>.<user ref>.<type>",
		Subjects:    []string{sc.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      sc.MaxAge,
		Duplicates:  sc.Duplicates,
		Storage:     jetstream.FileStorage,
		Replicas:    sc.Replicas,
		MaxMsgSize:  MaxDataBytes + MaxAudienceBytes + 16<<10,
	})
	if err != nil {
		existing, lookErr := js.Stream(ctx, sc.Name)
		if lookErr != nil {
			return nil, fmt.Errorf("events: create stream %s: %w", sc.Name, err)
		}
		log.Warn("cannot create or update the event stream; using it as it is",
			slog.String("error", err.Error()))
		stream = existing
	}
	info := stream.CachedInfo()
	return &Bus{
		nc: nc, js: js, stream: stream, name: sc.Name, prefix: sc.SubjectPrefix,
		created: info.Created.UnixNano(), refs: NewRefs(key), log: log,
		multiFilter: serverFiltersMany(nc.ConnectedServerVersion()),
	}, nil
}

// authOption reads the credentials once, to learn their kind, and returns
// the option that reads them again at every reconnect.
func authOption(ctx context.Context, get func(context.Context) (Credentials, error), log *slog.Logger) (nats.Option, error) {
	first, err := get(ctx)
	if err != nil {
		return nil, fmt.Errorf("events: NATS credentials: %w", err)
	}
	// The callbacks run on the connect and reconnect goroutines, one
	// connection attempt at a time; the lock is for the race detector's
	// sake as much as for safety.
	var mu sync.Mutex
	last := first
	current := func() Credentials {
		ctx, cancel := context.WithTimeout(context.Background(), credentialsTimeout)
		defer cancel()
		c, err := get(ctx)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			log.Warn("cannot read the NATS credentials; using the last ones", slog.String("error", err.Error()))
			return last
		}
		if c.kind() != first.kind() {
			log.Warn("the NATS credentials changed kind; restart to use the new kind")
			return last
		}
		last = c
		return c
	}
	switch first.kind() {
	case "creds":
		if _, _, err := parseCreds(first.Creds); err != nil {
			return nil, err
		}
		// The JWT is read first at each connect, then the seed signs the
		// server's nonce: both from that one read.
		var pending Credentials
		return nats.UserJWT(func() (string, error) {
			c := current()
			mu.Lock()
			pending = c
			mu.Unlock()
			jwt, _, err := parseCreds(c.Creds)
			return jwt, err
		}, func(nonce []byte) ([]byte, error) {
			mu.Lock()
			c := pending
			mu.Unlock()
			_, kp, err := parseCreds(c.Creds)
			if err != nil {
				return nil, err
			}
			defer kp.Wipe()
			return kp.Sign(nonce)
		}), nil
	case "token":
		return nats.TokenHandler(func() string { return current().Token }), nil
	case "user":
		return nats.UserInfoHandler(func() (string, string) {
			c := current()
			return c.User, c.Password
		}), nil
	}
	return nil, errors.New("events: NATS credentials hold none of creds, token, user")
}

// parseCreds reads a .creds file's JWT and seed; errors never quote them.
func parseCreds(creds string) (string, nkeys.KeyPair, error) {
	jwt, err := nkeys.ParseDecoratedJWT([]byte(creds))
	if err != nil {
		return "", nil, errors.New("events: NATS creds: no user JWT")
	}
	kp, err := nkeys.ParseDecoratedNKey([]byte(creds))
	if err != nil {
		return "", nil, errors.New("events: NATS creds: no NKey seed")
	}
	return jwt, kp, nil
}

// Refs returns the references the bus puts on subjects.
func (b *Bus) Refs() Refs { return b.refs }

// Stream is the stream's name.
func (b *Bus) Stream() string { return b.name }

// Close closes the connection to NATS; subscriptions end.
func (b *Bus) Close() {
	b.nc.Close()
}

// subject is where e goes.
func (b *Bus) subject(e Event) string {
	return b.prefix + "." + b.refs.User(e.User) + "." + e.Type
}

func (b *Bus) message(e Event) (*nats.Msg, error) {
	data, err := encodeEvent(e)
	if err != nil {
		return nil, fmt.Errorf("events: encode %q: %w", e.ID, err)
	}
	m := nats.NewMsg(b.subject(e))
	m.Data = data
	m.Header.Set(headerType, e.Type)
	if e.Source != "" {
		m.Header.Set(headerSource, e.Source)
	}
	if e.Client != "" {
		m.Header.Set(headerClient, e.Client)
	}
	return m, nil
}

// Publish publishes e and returns once the stream has stored it (or had
// it already: a republish of the same ID within the duplicate window is
// dropped). Services publish through the outbox; Publish is for what has
// no state to change with the event.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	m, err := b.message(e)
	if err != nil {
		return err
	}
	if _, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgID(e.ID), jetstream.WithExpectStream(b.name)); err != nil {
		return fmt.Errorf("events: publish %q: %w", e.ID, err)
	}
	return nil
}

// publishAll publishes every event without waiting for each ack in turn
// (they pipeline on the one connection, so the stream stores them in
// order), and returns each one's outcome. The caller must not pass two
// events of one user: if the first failed and the second did not, the
// user's order would be lost (see Relay).
func (b *Bus) publishAll(ctx context.Context, events []Event) []error {
	errs := make([]error, len(events))
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, e := range events {
		m, err := b.message(e)
		if err != nil {
			errs[i] = err
			continue
		}
		futures[i], errs[i] = b.js.PublishMsgAsync(m, jetstream.WithMsgID(e.ID), jetstream.WithExpectStream(b.name))
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("events: publish %q: %w", events[i].ID, err)
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}

// selection is what a Filter selects, as a consumer can ask for it.
type selection struct {
	// subjects are the consumer's filter subjects.
	subjects []string
	// keep, when set, are the subjects the client keeps of what the
	// consumer delivers: a server older than 2.10 filters on one subject
	// only, so several are asked as their one common wildcard, and the
	// rest is dropped here.
	keep []string
}

// selection turns f into subjects.
func (b *Bus) selection(f Filter) (selection, error) {
	user := "*"
	if f.User != "" {
		user = b.refs.User(f.User)
	}
	if len(f.Types) == 0 {
		if f.User == "" {
			return selection{subjects: []string{b.prefix + ".>"}}, nil
		}
		return selection{subjects: []string{b.prefix + "." + user + ".>"}}, nil
	}
	var subjects []string
	for _, t := range f.Types {
		if err := checkType(t, true); err != nil {
			return selection{}, fmt.Errorf("events: filter: %w", err)
		}
		if s := b.prefix + "." + user + "." + t; !slices.Contains(subjects, s) {
			subjects = append(subjects, s)
		}
	}
	if len(subjects) == 1 || b.multiFilter {
		return selection{subjects: subjects}, nil
	}
	if f.User == "" {
		return selection{subjects: []string{b.prefix + ".>"}, keep: subjects}, nil
	}
	return selection{subjects: []string{b.prefix + "." + user + ".>"}, keep: subjects}, nil
}

// kept reports whether a delivered subject is one s selects.
func (s selection) kept(subject string) bool {
	if s.keep == nil {
		return true
	}
	return slices.ContainsFunc(s.keep, func(pattern string) bool { return subjectMatch(pattern, subject) })
}

// subjectMatch reports whether subject matches a NATS subject pattern
// ('*' one token, '>' the rest).
func subjectMatch(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		switch {
		case p == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case p != "*" && p != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}

// serverFiltersMany reports whether a server of this version (2.10 on)
// filters a consumer on several subjects.
func serverFiltersMany(version string) bool {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (major > 2 || major == 2 && minor >= 10)
}

// delivered reads a message of the stream.
func (b *Bus) delivered(msg jetstream.Msg) (Delivered, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return Delivered{}, fmt.Errorf("events: message metadata: %w", err)
	}
	e, err := decodeEvent(msg.Data())
	if err != nil {
		return Delivered{}, fmt.Errorf("events: message %d: %w", meta.Sequence.Stream, err)
	}
	ref, _, _ := strings.Cut(strings.TrimPrefix(msg.Subject(), b.prefix+"."), ".")
	return Delivered{
		Event:   e,
		UserRef: ref,
		Cursor:  cursor{stream: b.name, created: b.created, seq: meta.Sequence.Stream}.String(),
	}, nil
}
