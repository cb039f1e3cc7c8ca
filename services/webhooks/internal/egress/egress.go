// Package egress is how the webhooks service reaches the outside world
// without being turned against its own network (SSRF). A URL is checked
// when an endpoint is registered — https only, its host resolved and every
// address it resolves to public — and again on every delivery, on the
// address actually dialled (a net.Dialer Control hook, after DNS), so a
// name that resolves to a public address at registration and to a private
// one later (DNS rebinding) is still never connected to. Redirects are
// not followed and no proxy from the environment is used, since either
// would connect somewhere the check did not see.
//
// Outside dev mode every address in Refused's ranges is refused. In dev
// mode (and tests) http and private addresses are allowed, so a receiver
// on 127.0.0.1 works.
package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Resolver looks up a host's addresses; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says where deliveries may go.
type Policy struct {
	// AllowPrivate allows http and addresses inside private networks: dev
	// mode and tests only.
	AllowPrivate bool
	// Resolver resolves hosts at registration and delivery; default
	// net.DefaultResolver.
	Resolver Resolver
	// ResolveTimeout bounds a registration's lookup; default 5s.
	ResolveTimeout time.Duration
}

func (p Policy) resolver() Resolver {
	if p.Resolver == nil {
		return net.DefaultResolver
	}
	return p.Resolver
}

// RefusedError is a refusal of a URL or an address. Its text says why, in
// words fit for the client who registered the URL, never more than the
// client sent.
type RefusedError struct{ Why string }

func (e *RefusedError) Error() string { return e.Why }

func refused(format string, args ...any) error {
	return &RefusedError{Why: fmt.Sprintf(format, args...)}
}

// blocked are the ranges no delivery may reach beyond what netip's own
// predicates name (loopback, private, link-local, multicast, unspecified).
var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // carrier-grade NAT (RFC 6598)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation (TEST-NET-1)
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation (TEST-NET-2)
		"203.0.113.0/24",  // documentation (TEST-NET-3)
		"240.0.0.0/4",     // reserved, and 255.255.255.255
		"::/96",           // IPv4-compatible (deprecated), embeds an IPv4 address
		"64:ff9b::/96",    // NAT64: reaches the IPv4 address it embeds
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard
		"2001::/32",       // Teredo: reaches an IPv4 address it embeds
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4: reaches the IPv4 address it embeds
		"fec0::/10",       // site-local (deprecated)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Refused says why addr is inside a network deliveries must not reach, or
// "" when it is a public address. IPv4-mapped IPv6 addresses
// (::ffff:10.0.0.1) are judged as the IPv4 address they are.
func Refused(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	switch {
	case !addr.IsValid():
		return "not an IP address"
	case addr.IsUnspecified():
		return "an unspecified address"
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsPrivate():
		return "a private address" // 10/8, 172.16/12, 192.168/16, fc00::/7 (unique local)
	case addr.IsLinkLocalUnicast():
		return "a link-local address" // 169.254/16 (cloud metadata), fe80::/10
	case addr.IsMulticast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, p := range blocked {
		if p.Contains(addr) {
			return "a reserved or special-purpose address (" + p.String() + ")"
		}
	}
	return ""
}

// CheckURL checks a URL an endpoint is registered with: absolute, http(s)
// (https outside dev mode), no user info, a host that resolves, and every
// address it resolves to public. The error is a *RefusedError saying why;
// a lookup failure is a refusal too (a URL that does not resolve cannot be
// delivered to).
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return refused("not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowPrivate:
	default:
		return refused("the scheme must be https")
	}
	if u.User != nil {
		return refused("the URL must not carry user info; authenticate the webhook by its signature")
	}
	if u.Fragment != "" {
		return refused("the URL must not have a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return refused("the URL has no host")
	}
	if p.AllowPrivate {
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if why := Refused(addr); why != "" {
			return refused("the host is %s", why)
		}
		return nil
	}
	// Hosts such as "localhost." or "metadata.google.internal" are names
	// like any other: what they resolve to decides.
	timeout := p.ResolveTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return refused("the host does not resolve")
	}
	for _, a := range addrs {
		if why := Refused(a); why != "" {
			return refused("the host resolves to %s", why)
		}
	}
	return nil
}

// control refuses to connect to an address Refused names, on every dial:
// it sees the address after DNS resolution, whatever the name said at
// registration.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	if p.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refused("cannot judge the address dialled")
	}
	if why := Refused(ap.Addr()); why != "" {
		return refused("the host resolved to %s", why)
	}
	return nil
}

// Client returns the HTTP client deliveries go through: the dial-time
// address check, no proxy, no redirects followed (a 3xx is the answer),
// and timeout over each whole attempt.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
	if r, ok := p.Resolver.(*net.Resolver); ok {
		d.Resolver = r
	} else if p.Resolver != nil {
		custom := p.Resolver
		dial := d.DialContext
		return p.client(timeout, func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if _, err := netip.ParseAddr(host); err == nil {
				return dial(ctx, network, addr)
			}
			ips, err := custom.LookupNetIP(ctx, "ip", host)
			if err != nil || len(ips) == 0 {
				return nil, fmt.Errorf("lookup %s: no address", host)
			}
			return dial(ctx, network, net.JoinHostPort(ips[0].String(), port))
		})
	}
	return p.client(timeout, d.DialContext)
}

func (p Policy) client(timeout time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would connect where the check did not look
			DialContext:           dial,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// IsRefused reports whether err is, or wraps, a refusal: the delivery log
// tells a delivery stopped by the address check apart from other network
// errors.
func IsRefused(err error) bool {
	_, ok := errors.AsType[*RefusedError](err)
	return ok
}

// Drain reads and discards at most limit bytes of a response body and
// closes it, so the connection can be reused; bodies are never kept.
func Drain(body io.ReadCloser, limit int64) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, limit))
	_ = body.Close()
}
