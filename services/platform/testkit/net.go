package testkit

import (
	"net"
	"sync"
	"testing"
)

// ClosedAddr is a 127.0.0.1 address nothing listens on: connections to it
// are refused, as to a killed process.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// Blackhole is a 127.0.0.1 address that accepts connections and never says
// a word on them, as a frozen process's listen backlog or a silently
// dropping network does. The connections close when the test ends.
func Blackhole(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	return lis.Addr().String()
}
