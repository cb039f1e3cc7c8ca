package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
)

// CarrierCode is the sandbox carrier's code, as in the push URL
// .../v1/carriers/sandbox/trackingEvents.
const CarrierCode = "sandbox"

// DefaultCarrierStep is the compressed clock's default: a parcel moves
// every two seconds.
const DefaultCarrierStep = 2 * time.Second

// A failed push (network error, 429 or 5xx) is sent again, with the same
// push id, up to carrierAttempts times in all, waiting carrierBackoff, then
// twice as long each time.
const (
	carrierAttempts = 4
	carrierBackoff  = 200 * time.Millisecond
	defaultTimeout  = 10 * time.Second
	maxAnswer       = 64 << 10 // bytes of an answer read, for its counts
)

// Errors of the sandbox carrier.
var (
	// ErrUnknownTrackingNumber: the number is not one of TrackingNumbers.
	ErrUnknownTrackingNumber = errors.New("sandbox carrier: not a sandbox tracking number")
	// ErrPushRefused: the receiver answered 401 (wrong secret, timestamp
	// out of its tolerance, or a replayed push id); the run stops.
	ErrPushRefused = errors.New("sandbox carrier: push refused with 401 (signature, timestamp or replayed push id)")
	// ErrCarrierClosed: Start after Close.
	ErrCarrierClosed = errors.New("sandbox carrier: closed")
)

// CarrierConfig configures a Carrier.
type CarrierConfig struct {
	// PushURL is where tracking events are POSTed, e.g.
	// http://127.0.0.1:8080/v1/carriers/sandbox/trackingEvents. Required.
	PushURL string
	// Secret is the Standard Webhooks signing secret, "whsec_...".
	// Required; never logged.
	Secret string
	// Step is the time between two events of a run; default
	// DefaultCarrierStep.
	Step time.Duration
	// Client sends the pushes; default a client with a 10s timeout. Give
	// it a timeout: a push waits for the answer.
	Client *http.Client
	// Logger receives a line per push; default none.
	Logger *slog.Logger
}

// String describes the configuration without its secret, so that printing
// it is safe.
func (c CarrierConfig) String() string {
	return fmt.Sprintf("{PushURL:%s Step:%s}", c.PushURL, c.Step)
}

// Carrier is the sandbox carrier: it pushes a tracking number's scripted
// events to bankbridge's shipping service, signed in the Standard Webhooks
// scheme, one every Step (a compressed clock), so that a watcher sees the
// parcel move. It is safe for concurrent use.
type Carrier struct {
	pushURL string
	secrets []string
	step    time.Duration
	client  *http.Client
	log     *slog.Logger
	scripts map[string][]carrierStep

	// Runs started with Start live until Close.
	ctx    context.Context
	cancel context.CancelFunc
	runs   sync.WaitGroup

	mu      sync.Mutex
	lastRun int64
	closed  bool
}

// NewCarrier returns a Carrier; Close ends the runs it started in the
// background.
func NewCarrier(cfg CarrierConfig) (*Carrier, error) {
	u, err := url.Parse(cfg.PushURL)
	switch {
	case cfg.PushURL == "":
		return nil, errors.New("sandbox carrier: push URL is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, errors.New("sandbox carrier: push URL must be an absolute http or https URL")
	case cfg.Step < 0:
		return nil, errors.New("sandbox carrier: step must not be negative")
	}
	if _, err := stdwebhook.Key(cfg.Secret); err != nil {
		return nil, fmt.Errorf("sandbox carrier: secret: %w", err)
	}
	if cfg.Step == 0 {
		cfg.Step = DefaultCarrierStep
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: defaultTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Carrier{
		pushURL: cfg.PushURL,
		secrets: []string{cfg.Secret},
		step:    cfg.Step,
		client:  cfg.Client,
		log:     cfg.Logger.With(slog.String("carrier", CarrierCode)),
		scripts: carrierScripts(),
		ctx:     ctx,
		cancel:  cancel,
	}, nil
}

// Steps returns how many events number's script has, or
// ErrUnknownTrackingNumber.
func (c *Carrier) Steps(number string) (int, error) {
	s, ok := c.scripts[number]
	if !ok {
		return 0, ErrUnknownTrackingNumber
	}
	return len(s), nil
}

// Play plays number's script from the start and returns when its last
// event is delivered: one signed POST per event, Step apart, each
// checkpoint timed when it is sent. Every run has event ids of its own,
// "sbx-<number>-<run>-<step>", so playing a number again moves the parcel
// again rather than repeating events the receiver stored. A push that
// fails with a network error, 429 or 5xx is sent again with the same push
// id; one that fails for good, or a 401 (ErrPushRefused), stops the run
// with an error.
func (c *Carrier) Play(ctx context.Context, number string) error {
	script, ok := c.scripts[number]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTrackingNumber, number)
	}
	run := c.newRun()
	log := c.log.With(slog.String("tracking_number", number), slog.String("run", run))
	for i, s := range script {
		if i > 0 {
			if err := sleep(ctx, c.step); err != nil {
				return err
			}
		}
		n := i + 1
		ev := s.event(number, fmt.Sprintf("sbx-%s-%s-%d", number, run, n), time.Now(), c.step)
		if err := c.push(ctx, log, ev); err != nil {
			return fmt.Errorf("sandbox carrier: %s run %s, step %d of %d (%s): %w",
				number, run, n, len(script), s.status, err)
		}
	}
	log.Info("carrier run finished", slog.Int("steps", len(script)))
	return nil
}

// PlayAll plays every tracking number at once, for a dev stack that wants
// parcels moving, and returns when all runs have ended, with their errors.
func (c *Carrier) PlayAll(ctx context.Context) error {
	numbers := TrackingNumbers()
	errs := make([]error, len(numbers))
	var wg sync.WaitGroup
	for i, n := range numbers {
		wg.Go(func() { errs[i] = c.Play(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start plays number in the background until its run ends or Close, logs
// how a failed run ended, and returns the number of steps it will send.
func (c *Carrier) Start(number string) (int, error) {
	steps, err := c.Steps(number)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrCarrierClosed
	}
	c.runs.Go(func() {
		if err := c.Play(c.ctx, number); err != nil && c.ctx.Err() == nil {
			c.log.Error("carrier run stopped", slog.String("tracking_number", number), slog.String("error", err.Error()))
		}
	})
	return steps, nil
}

// Close stops the runs Start began and waits for them to end.
func (c *Carrier) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.runs.Wait()
}

// newRun names a new run: the time it starts, in milliseconds and base 36,
// kept increasing, so that a run's event ids differ from those of every
// earlier run, in this process or a previous one.
func (c *Carrier) newRun() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastRun = max(c.lastRun+1, time.Now().UnixMilli())
	return strconv.FormatInt(c.lastRun, 36)
}

// push sends one event, retrying a transient failure with the same push id
// (the same message, in Standard Webhooks terms) and a fresh timestamp.
//
// A push whose answer was lost (a network error) may have been accepted,
// and then its id is a replay to the receiver: a 401 after such a failure
// is answered once with a new push id carrying the same event, which the
// receiver stores at most once by its event id.
func (c *Carrier) push(ctx context.Context, log *slog.Logger, ev *shippingv1.CarrierEvent) error {
	body, err := protojson.Marshal(&shippingv1.CarrierPush{Events: []*shippingv1.CarrierEvent{ev}})
	if err != nil {
		return err
	}
	log = log.With(slog.String("event_id", ev.GetEventId()), slog.String("status", ev.GetCheckpoint().GetStatus().String()))
	pushID := randomID("push_")
	lost, renewed := false, false // an answer was lost; the id was renewed for it
	wait := carrierBackoff
	for attempt := 1; ; attempt++ {
		code, answer, err := c.post(ctx, pushID, body)
		switch {
		case err == nil && code/100 == 2:
			var resp shippingv1.CarrierPushResponse
			_ = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(answer, &resp)
			log.Info("carrier event pushed", slog.String("push_id", pushID), slog.Int("attempt", attempt),
				slog.Int("recorded", int(resp.GetRecordedCount())), slog.Int("duplicates", int(resp.GetDuplicateCount())))
			return nil
		case err == nil && code == http.StatusUnauthorized && lost && !renewed && attempt < carrierAttempts:
			log.Warn("carrier push refused after a lost answer, maybe as a replay; sending the event with a new push id",
				slog.String("push_id", pushID), slog.Int("attempt", attempt))
			pushID, renewed = randomID("push_"), true
			continue
		case err == nil && code == http.StatusUnauthorized:
			return ErrPushRefused
		case err == nil && code != http.StatusTooManyRequests && code < 500:
			return fmt.Errorf("push answered %d", code)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if err != nil {
			lost = true
		} else {
			err = fmt.Errorf("push answered %d", code)
		}
		if attempt == carrierAttempts {
			return fmt.Errorf("%d attempts: %w", attempt, err)
		}
		log.Warn("carrier push failed; sending it again with the same push id", slog.String("push_id", pushID),
			slog.Int("attempt", attempt), slog.String("error", err.Error()), slog.String("retry_in", wait.String()))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait *= 2
	}
}

// post sends one attempt, signed now, and returns the answer's status code
// and the start of its body.
func (c *Carrier) post(ctx context.Context, pushID string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.pushURL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := stdwebhook.SetHeaders(req.Header, c.secrets, pushID, time.Now(), body); err != nil {
		return 0, nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer)) // lets the connection be reused
	return resp.StatusCode, answer, nil
}
