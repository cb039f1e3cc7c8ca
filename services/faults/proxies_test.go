package faults

import (
	"bufio"
	"net"
	"strconv"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write([]byte(sc.Text() + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip writes a line on c and waits up to d for its echo.
func roundTrip(c net.Conn, r *bufio.Reader, d time.Duration) (time.Duration, error) {
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := r.ReadString('\n')
	return time.Since(start), err
}

func dialProxy(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// TestSilenceOpenConnections: the silent toxic drops every byte of the
// connections open when it is added, and passes a new connection's — the
// fault only a client with keepalive survives.
func TestSilenceOpenConnections(t *testing.T) {
	p := NewProxies()
	t.Cleanup(p.Close)
	addr := p.Rewrite("bank", echoServer(t))
	old, oldR := dialProxy(t, addr)
	if _, err := roundTrip(old, oldR, 2*time.Second); err != nil {
		t.Fatalf("through the proxy before the fault: %v", err)
	}
	until := time.Now().Add(300 * time.Millisecond).UnixMilli()
	for _, stream := range []string{"downstream", "upstream"} {
		if err := p.Toxic("bank", "silence-"+stream, silentType, stream, 1, `{"until":`+itoa(until)+`}`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := roundTrip(old, oldR, 500*time.Millisecond); err == nil {
		t.Fatal("an open connection still answers after the silent toxic")
	}
	time.Sleep(400 * time.Millisecond)
	fresh, freshR := dialProxy(t, addr)
	if _, err := roundTrip(fresh, freshR, 2*time.Second); err != nil {
		t.Fatalf("a new connection is silenced too: %v", err)
	}
}

// TestLatencyToxicAndHeal: a latency toxic slows answers by its latency;
// Heal takes it away.
func TestLatencyToxicAndHeal(t *testing.T) {
	p := NewProxies()
	t.Cleanup(p.Close)
	addr := p.Rewrite("bank", echoServer(t))
	c, r := dialProxy(t, addr)
	if err := p.Toxic("bank", "latency", "latency", "downstream", 1, `{"latency":300}`); err != nil {
		t.Fatal(err)
	}
	if took, err := roundTrip(c, r, 2*time.Second); err != nil || took < 300*time.Millisecond {
		t.Fatalf("with +300 ms: took %s, err %v", took, err)
	}
	if err := p.Heal("bank"); err != nil {
		t.Fatal(err)
	}
	if took, err := roundTrip(c, r, 2*time.Second); err != nil || took >= 300*time.Millisecond {
		t.Fatalf("healed: took %s, err %v", took, err)
	}
	if again := p.Rewrite("bank", p.byDep["bank"].Upstream); again != addr {
		t.Errorf("a second Rewrite made another proxy: %s, want %s", again, addr)
	}
}

// TestCutRefusesThenHealRestores: Cut closes the open connection and
// refuses new ones; Heal listens again on the same address.
func TestCutRefusesThenHealRestores(t *testing.T) {
	p := NewProxies()
	t.Cleanup(p.Close)
	addr := p.Rewrite("nats", echoServer(t))
	c, r := dialProxy(t, addr)
	if err := p.Cut("nats"); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c, r, time.Second); err == nil {
		t.Fatal("an open connection survives Cut")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("a new connection is accepted while cut")
	}
	if err := p.Heal("nats"); err != nil {
		t.Fatal(err)
	}
	c2, r2 := dialProxy(t, addr)
	if _, err := roundTrip(c2, r2, 2*time.Second); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
