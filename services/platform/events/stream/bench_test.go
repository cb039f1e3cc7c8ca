package stream_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// BenchmarkHubFanout is one process with 10,000 open watches, one per
// user, each read by a goroutine of its own as Serve reads it (no gRPC),
// and every user's event published at once through the bus, by 32
// publishers of another connection (another process). An op is the round
// of 10,000 events. It reports the latency from each Publish call to its
// watcher's receipt (p50, p99, max), events/s, the heap and stacks a
// watcher with its reader costs, and allocations per event in this process
// (with the embedded server's own, on the embedded backend).
//
//	go test -run '^$' -bench HubFanout -benchtime 5x ./platform/events/stream/
func BenchmarkHubFanout(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		s, err := events.Embedded(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		benchHubFanout(b, s.URL())
	})
	b.Run("nats-server", func(b *testing.B) { benchHubFanout(b, testkit.RealNATS(b)) })
}

func benchHubFanout(b *testing.B, url string) {
	const users, publishers = 10_000, 32
	const typ = "shipping.shipment.updated"
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	sc := events.StreamConfig{Name: "BBSTREAMBENCH_" + id, SubjectPrefix: "bbstreambench." + id + ".events"}
	connect := func() *events.Bus {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bus, err := events.Connect(ctx, events.Config{URL: url, Name: "stream-bench", SubjectKey: subjectKey, Stream: sc})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(bus.Close)
		return bus
	}
	pub, sub := connect(), connect()
	b.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		if js, err := jetstream.New(nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = js.DeleteStream(ctx, sc.Name)
		}
	})
	hub, err := stream.NewHub(sub, stream.HubOptions{Types: []string{typ}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(hub.Close)

	before := memInUse()
	received := make([]int64, users)
	var round sync.WaitGroup
	var readers sync.WaitGroup
	for i := range users {
		w, err := hub.Watch("user-"+strconv.Itoa(i), []string{typ})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(w.Close)
		readers.Go(func() {
			for range w.Events() {
				received[i] = time.Now().UnixNano()
				round.Done()
			}
		})
	}
	perWatcher := float64(memInUse()-before) / users
	b.Cleanup(func() { hub.Close(); readers.Wait() })

	sent := make([]int64, users)
	var latencies []time.Duration
	var elapsed time.Duration
	var mallocs uint64
	payload := []byte(`{"type":"SHIPMENT_EVENT_TYPE_UPDATED","shipment":{"status":"SHIPMENT_STATUS_IN_TRANSIT"}}`)
	b.ReportAllocs()
	for r := 0; b.Loop(); r++ {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		startMallocs := ms.Mallocs
		round.Add(users)
		start := time.Now()
		var next atomic.Int64
		var pubs sync.WaitGroup
		for range publishers {
			pubs.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= users {
						return
					}
					e := events.Event{
						ID: id + "-" + strconv.Itoa(r) + "-" + strconv.Itoa(i), Type: typ, Source: "bench",
						User: "user-" + strconv.Itoa(i), Resource: "users/user-" + strconv.Itoa(i) + "/shipments/s1", Data: payload,
					}
					sent[i] = time.Now().UnixNano()
					if err := pub.Publish(context.Background(), e); err != nil {
						b.Error(err)
						round.Done()
					}
				}
			})
		}
		pubs.Wait()
		if !waitTimeout(&round, 2*time.Minute) {
			b.Fatalf("round %d: not every watcher got its event within 2 minutes", r)
		}
		elapsed += time.Since(start)
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - startMallocs
		for i := range users {
			latencies = append(latencies, time.Duration(received[i]-sent[i]))
		}
	}
	b.StopTimer()
	if hub.Watchers() != users {
		b.Fatalf("%d watchers left of %d: some fell behind", hub.Watchers(), users)
	}
	slices.Sort(latencies)
	n := len(latencies)
	b.ReportMetric(float64(latencies[n/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(latencies[n*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(latencies[n-1].Microseconds())/1000, "max_ms")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(mallocs)/float64(n), "allocs/event")
	b.ReportMetric(perWatcher, "B/watcher")
}

// memInUse is the heap and goroutine stacks in use, after a collection.
func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

// waitTimeout waits for wg, or reports false after d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// serveFanout is a shipping-like server on 127.0.0.1 behind the real
// server kit, its watches served by Serve on one hub, with one watch
// stream open for each of its users, over 32 client connections.
type serveFanout struct {
	pub      *events.Bus
	id       string
	userName func(int) string
	// round is done once per event each stream receives; received is
	// when each user's stream last received one (UnixNano).
	round    *sync.WaitGroup
	received []int64
	failed   atomic.Int64
}

// startServeFanout starts it with users streams, reading live the given
// types (nil: the per-user ones only).
func startServeFanout(b *testing.B, users int, live []string) *serveFanout {
	const conns = 32
	s, err := events.Embedded(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	sc := events.StreamConfig{Name: "BBSTREAMBENCH_" + id, SubjectPrefix: "bbstreambench." + id + ".events"}
	connect := func() *events.Bus {
		bus, err := events.Connect(context.Background(), events.Config{URL: s.URL(), Name: "stream-bench", SubjectKey: subjectKey, Stream: sc})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(bus.Close)
		return bus
	}
	pub, sub := connect(), connect()
	hubTypes := shipmentTypes
	if live != nil {
		hubTypes = live
	}
	hub, err := stream.NewHub(sub, stream.HubOptions{Types: hubTypes})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(hub.Close)
	userName := func(i int) string { return "user" + strconv.Itoa(i) }
	all := make([]string, users)
	for i := range all {
		all[i] = userName(i)
	}
	consent := newFakeConsent(all...)
	srv := servertest.Start(b, server.Deps{Consent: consent, Recorder: consent},
		func(r grpc.ServiceRegistrar) {
			shippingv1.RegisterShippingServiceServer(r, &watchServer{feed: stream.Feed{Bus: sub, Hub: hub, Consent: consent}, live: live})
		}, servertest.Options{Name: "shipping"})
	clients := make([]shippingv1.ShippingServiceClient, conns)
	for i := range clients {
		conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		clients[i] = shippingv1.NewShippingServiceClient(conn)
	}

	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	f := &serveFanout{pub: pub, id: id, userName: userName, round: new(sync.WaitGroup), received: make([]int64, users)}
	var opened sync.WaitGroup
	for i := range users {
		tok, err := srv.Issuer.Mint(userName(i), servertest.Client, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		md := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok, "bankbridge-purpose", "ORDER_TRACKING")
		st, err := clients[i%conns].WatchShipments(md, &shippingv1.WatchShipmentsRequest{Parent: "users/" + userName(i)})
		if err != nil {
			b.Fatal(err)
		}
		opened.Add(1)
		go func() {
			_, err := st.Header()
			opened.Done()
			if err != nil {
				f.failed.Add(1)
				return
			}
			for {
				if _, err := st.Recv(); err != nil {
					if ctx.Err() == nil {
						f.failed.Add(1)
					}
					return
				}
				f.received[i] = time.Now().UnixNano()
				f.round.Done()
			}
		}()
	}
	opened.Wait()
	if n := f.failed.Load(); n > 0 {
		b.Fatalf("%d streams failed to open", n)
	}
	return f
}

// BenchmarkServeAudienceFanout is BenchmarkServeFanout with one event for
// every user at once, as a carrier's checkpoint for a parcel 10,000 users
// track reaches them: one audience event listing each user's shipment,
// published once, latency from the Publish call to each client's Recv.
// It is the floor of the shipping fan-out (BenchmarkShipmentFanout in
// e2e) without the push, its transaction and the relay.
//
//	go test -run '^$' -bench ServeAudienceFanout -benchtime 3x ./platform/events/stream/
func BenchmarkServeAudienceFanout(b *testing.B) {
	const users = 10_000
	f := startServeFanout(b, users, liveTypes)
	audience := make([]string, users)
	for i := range audience {
		audience[i] = "users/" + f.userName(i) + "/shipments/s1"
	}
	data, err := protojson.Marshal(&shippingv1.ShipmentEvent{
		Type:     shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED,
		Shipment: &shippingv1.Shipment{Status: shippingv1.ShipmentStatus_SHIPMENT_STATUS_IN_TRANSIT},
	})
	if err != nil {
		b.Fatal(err)
	}
	var latencies []time.Duration
	for r := 0; b.Loop(); r++ {
		f.round.Add(users)
		e := events.Event{ID: f.id + "-parcel-" + strconv.Itoa(r), Type: typeParcelTracked, Source: "bench", User: "parcels/ups/1Z0000000000000000", Data: data, Audience: audience}
		sent := time.Now().UnixNano()
		if err := f.pub.Publish(context.Background(), e); err != nil {
			b.Fatal(err)
		}
		if !waitTimeout(f.round, 2*time.Minute) {
			b.Fatalf("round %d: not every stream got the event within 2 minutes (%d streams failed)", r, f.failed.Load())
		}
		for i := range users {
			latencies = append(latencies, time.Duration(f.received[i]-sent))
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	n := len(latencies)
	b.ReportMetric(float64(latencies[n/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(latencies[n*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(latencies[n-1].Microseconds())/1000, "max_ms")
}

// BenchmarkServeFanout is BenchmarkHubFanout through gRPC: 10,000 watch
// streams (WatchShipments served by Serve on a hub, behind the real server
// kit on 127.0.0.1, over 32 client connections), every user's event
// published at once, latency from each Publish call to the client's Recv.
//
//	go test -run '^$' -bench ServeFanout -benchtime 3x ./platform/events/stream/
func BenchmarkServeFanout(b *testing.B) {
	const users, publishers = 10_000, 32
	f := startServeFanout(b, users, nil)
	pub, id, userName, round, received, failed := f.pub, f.id, f.userName, f.round, f.received, &f.failed

	sent := make([]int64, users)
	var latencies []time.Duration
	data, err := protojson.Marshal(&shippingv1.ShipmentEvent{
		Type:     shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED,
		Shipment: &shippingv1.Shipment{Name: "users/u/shipments/s1", Status: shippingv1.ShipmentStatus_SHIPMENT_STATUS_IN_TRANSIT},
	})
	if err != nil {
		b.Fatal(err)
	}
	for r := 0; b.Loop(); r++ {
		round.Add(users)
		var next atomic.Int64
		var pubs sync.WaitGroup
		for range publishers {
			pubs.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= users {
						return
					}
					e := events.Event{ID: id + "-" + strconv.Itoa(r) + "-" + strconv.Itoa(i), Type: typeUpdated, Source: "bench", User: userName(i), Data: data}
					sent[i] = time.Now().UnixNano()
					if err := pub.Publish(context.Background(), e); err != nil {
						b.Error(err)
						round.Done()
					}
				}
			})
		}
		pubs.Wait()
		if !waitTimeout(round, 2*time.Minute) {
			b.Fatalf("round %d: not every stream got its event within 2 minutes (%d streams failed)", r, failed.Load())
		}
		for i := range users {
			latencies = append(latencies, time.Duration(received[i]-sent[i]))
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	n := len(latencies)
	b.ReportMetric(float64(latencies[n/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(latencies[n*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(latencies[n-1].Microseconds())/1000, "max_ms")
}
