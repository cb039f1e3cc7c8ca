package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// adminGrace bounds the admin listener's stop: it has answered /readyz 503
// through the whole drain, and its calls are short.
const adminGrace = 5 * time.Second

// Endpoint is one listener of a process and the server on it, as the stop
// sequence sees it.
type Endpoint struct {
	// Name says which endpoint failed ("gRPC", "admin HTTP", ...).
	Name     string
	serve    func() error
	graceful func()
	stop     func()
}

// GRPCEndpoint serves srv on lis.
func GRPCEndpoint(srv *grpc.Server, lis net.Listener) Endpoint {
	return Endpoint{Name: "gRPC", serve: func() error {
		if err := srv.Serve(lis); !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil // stopped before it started serving
	}, graceful: srv.GracefulStop, stop: srv.Stop}
}

// HTTPEndpoint serves srv on lis. Its graceful stop closes the listener and
// idle connections and waits for requests in flight; its hard stop closes
// every connection.
func HTTPEndpoint(name string, srv *http.Server, lis net.Listener) Endpoint {
	ctx, cancel := context.WithCancel(context.Background())
	return Endpoint{
		Name: name,
		serve: func() error {
			if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
		graceful: func() { _ = srv.Shutdown(ctx) },
		stop: func() {
			cancel()
			_ = srv.Close()
		},
	}
}

// AdminEndpoint serves h, an admin handler, on lis with the admin
// listener's timeouts.
func AdminEndpoint(lis net.Listener, h http.Handler) Endpoint {
	return HTTPEndpoint("admin HTTP", &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
	}, lis)
}

// AdminHandler is what every admin listener serves: /healthz (the process
// is alive), /readyz (200 while ready reports true, 503 from the stop signal
// on), /metrics, and the extra routes.
func AdminHandler(ready func() bool, metrics http.Handler, extra map[string]http.Handler) http.Handler {
	return adminHandler(Readyz(ready), metrics, extra)
}

// AdminHandlerProbes is AdminHandler whose /readyz also checks probes,
// each result reused for a second (the gateway: its backends answer).
func AdminHandlerProbes(ready func() bool, metrics http.Handler, extra map[string]http.Handler, log *slog.Logger, probes ...Probe) http.Handler {
	return adminHandler(readyz(ready, newProber(log, probes)), metrics, extra)
}

func adminHandler(readyz, metrics http.Handler, extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", readyz)
	mux.Handle("GET /metrics", metrics)
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return mux
}

// Shutdown is the one stop sequence of every bankbridge server, gRPC or
// HTTP. Once the stop signal arrives:
//
//  1. NotServing runs at once: gRPC health NOT_SERVING, /readyz 503;
//  2. for DrainDelay every call is still served, so load balancers stop
//     routing here before anything is refused;
//  3. the endpoints stop gracefully: no new calls, in-flight ones finish
//     (open gRPC streams are ended, see Stopping);
//  4. once Grace has passed, what is still running is stopped hard;
//  5. the admin endpoints stop last, so /readyz says 503 throughout.
//
// What the servers' handlers use (credentials, token caches, connections)
// must outlive Serve: close it only after Serve returns.
type Shutdown struct {
	DrainDelay time.Duration
	Grace      time.Duration
	Logger     *slog.Logger
	// NotServing turns the process's readiness off (step 1).
	NotServing func()
	// Stopping, when set, runs as the graceful stop begins (step 3): the
	// gRPC server ends its open streams then.
	Stopping func()
}

// Serve serves every endpoint until ctx ends or one of them fails, then
// runs the stop sequence and returns once every endpoint has stopped: nil
// after a stop by ctx, otherwise the first endpoint's error.
func (sd Shutdown) Serve(ctx context.Context, endpoints, admin []Endpoint) error {
	all := slices.Concat(endpoints, admin)
	errc := make(chan error, len(all))
	for _, e := range all {
		go func() {
			if err := e.serve(); err != nil {
				errc <- fmt.Errorf("%s: %w", e.Name, err)
				return
			}
			errc <- nil
		}()
	}
	var first error
	pending := len(all)
	select {
	case <-ctx.Done():
	case first = <-errc: // an endpoint ended on its own: stop the others
		pending--
	}
	sd.stop(endpoints, admin)
	for ; pending > 0; pending-- {
		if err := <-errc; first == nil {
			first = err
		}
	}
	return first
}

func (sd Shutdown) stop(endpoints, admin []Endpoint) {
	log := sd.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sd.NotServing != nil {
		sd.NotServing()
	}
	log.Info("draining", slog.String("drain_delay", sd.DrainDelay.String()), slog.String("grace", sd.Grace.String()))
	time.Sleep(sd.DrainDelay)
	if sd.Stopping != nil {
		sd.Stopping()
	}
	if !stopAll(endpoints, sd.Grace) {
		log.Warn("grace period over; stopping in-flight calls")
	}
	stopAll(admin, adminGrace)
	log.Info("stopped")
}

// stopAll stops every endpoint gracefully and at once, and hard when grace
// passes first. It reports whether every endpoint stopped gracefully.
func stopAll(endpoints []Endpoint, grace time.Duration) bool {
	var wg sync.WaitGroup
	for _, e := range endpoints {
		wg.Go(e.graceful)
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		for _, e := range endpoints {
			e.stop()
		}
		<-done
		return false
	}
}
