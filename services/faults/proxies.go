package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxies is an in-process Toxiproxy server with one TCP proxy per
// dependency, made on first use: the stack's processes dial the proxy
// (stack.Options.AddrRewrite), which forwards to the real address unless a
// row adds a toxic or cuts it. TLS passes through untouched: the proxy
// sees bytes, and the certificate is checked against the name the client
// expects (127.0.0.1 or the server_name of banks.yaml), not the port.
type Proxies struct {
	srv *toxiproxy.ApiServer

	mu    sync.Mutex
	byDep map[string]*toxiproxy.Proxy
}

// NewProxies starts an empty Toxiproxy server in this process.
func NewProxies() *Proxies {
	registerToxics()
	return &Proxies{
		srv:   toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop()),
		byDep: map[string]*toxiproxy.Proxy{},
	}
}

// Rewrite is a stack.Options.AddrRewrite: the address of dep's proxy,
// started on a free port in front of addr the first time dep is asked for.
// It panics when no proxy can listen, as the stack cannot start without.
func (p *Proxies) Rewrite(dep, addr string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if px, ok := p.byDep[dep]; ok {
		px.Lock()
		defer px.Unlock()
		if px.Upstream == "" { // reserved
			px.Upstream = addr
		}
		if px.Upstream != addr {
			panic(fmt.Sprintf("faults: %s is at %s, its proxy forwards to %s", dep, addr, px.Upstream))
		}
		return px.Listen
	}
	px := toxiproxy.NewProxy(p.srv, dep, "127.0.0.1:0", addr)
	if err := p.srv.Collection.Add(px, true); err != nil {
		panic(fmt.Sprintf("faults: proxy for %s: %v", dep, err))
	}
	p.byDep[dep] = px
	return px.Listen
}

// Reserve starts the proxies of deps now, their upstream set by the first
// Rewrite: their ports are taken before the stack picks the free ports of
// its own listeners, which a proxy started during the stack's start could
// otherwise take first.
func (p *Proxies) Reserve(deps ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, dep := range deps {
		if _, ok := p.byDep[dep]; ok {
			continue
		}
		px := toxiproxy.NewProxy(p.srv, dep, "127.0.0.1:0", "")
		if err := p.srv.Collection.Add(px, true); err != nil {
			return fmt.Errorf("faults: proxy for %s: %w", dep, err)
		}
		p.byDep[dep] = px
	}
	return nil
}

// AddRewrite puts a proxy in front of dep at addr now (a dependency the
// stack does not hand out, such as PostgreSQL) and returns its address.
func (p *Proxies) AddRewrite(dep, addr string) string { return p.Rewrite(dep, addr) }

func (p *Proxies) get(dep string) (*toxiproxy.Proxy, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	px, ok := p.byDep[dep]
	if !ok {
		return nil, fmt.Errorf("faults: no proxy in front of %s", dep)
	}
	return px, nil
}

// Toxic adds a Toxiproxy toxic to dep's proxy: typ is a toxic type
// (latency, timeout, reset_peer, limit_data, ...), stream "downstream"
// (towards the service) or "upstream", toxicity the share of connections
// it applies to, attrs its attributes as JSON ("{\"latency\":2000}"). It
// applies to connections open now and to new ones.
func (p *Proxies) Toxic(dep, name, typ, stream string, toxicity float64, attrs string) error {
	px, err := p.get(dep)
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":%g,"attributes":%s}`, name, typ, stream, toxicity, attrs)
	if _, err := px.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		return fmt.Errorf("faults: toxic %s on %s: %w", name, dep, err)
	}
	return nil
}

// Heal removes every toxic of dep's proxy and starts it again if it was
// cut.
func (p *Proxies) Heal(dep string) error {
	px, err := p.get(dep)
	if err != nil {
		return err
	}
	px.Toxics.ResetToxics(context.Background())
	if !px.Enabled {
		return px.Start()
	}
	return nil
}

// Cut stops dep's proxy: its open connections close and new ones are
// refused, as when the dependency's host goes away.
func (p *Proxies) Cut(dep string) error {
	px, err := p.get(dep)
	if err != nil {
		return err
	}
	px.Stop()
	return nil
}

// Close stops every proxy.
func (p *Proxies) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, px := range p.byDep {
		px.Stop()
	}
}
