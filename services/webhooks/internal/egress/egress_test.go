package egress_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/webhooks/internal/egress"
)

// fakeDNS answers fixed addresses, as a name under an attacker's control
// would.
type fakeDNS map[string][]netip.Addr

func (f fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestRefusedRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		refused bool
	}{
		{"10.0.0.1", true},
		{"172.16.5.4", true},
		{"192.168.1.1", true},
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"169.254.169.254", true},
		{"0.0.0.0", true},
		{"100.64.0.1", true},
		{"224.0.0.1", true},
		{"255.255.255.255", true},
		{"::1", true},
		{"::", true},
		{"fe80::1", true},
		{"fd00::1", true},
		{"fc00::1", true},
		{"ff02::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:10.0.0.1", true},
		{"::127.0.0.1", true},
		{"64:ff9b::a00:1", true},
		{"2002:a00:1::", true},
		{"93.184.216.34", false},
		{"8.8.8.8", false},
		{"2606:4700::1111", false},
		{"::ffff:8.8.8.8", false},
	}
	for _, tt := range tests {
		if got := egress.Refused(netip.MustParseAddr(tt.addr)) != ""; got != tt.refused {
			t.Errorf("Refused(%s) = %v, want %v", tt.addr, got, tt.refused)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	strict := egress.Policy{Resolver: fakeDNS{
		"hooks.example.com": addrs("93.184.216.34"),
		"localhost":         addrs("127.0.0.1"),
		"rebind.example":    addrs("93.184.216.34", "10.0.0.7"),
		"metadata.internal": addrs("169.254.169.254"),
		"v6.example":        addrs("2606:4700::1111"),
	}}
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.com/bankbridge", true},
		{"https://hooks.example.com:8443/x?y=1", true},
		{"https://v6.example/hook", true},
		{"https://93.184.216.34/hook", true},
		{"http://hooks.example.com/hook", false},
		{"https://10.0.0.1/hook", false},
		{"https://169.254.169.254/", false},
		{"https://[::1]/hook", false},
		{"https://[::ffff:127.0.0.1]/hook", false},
		{"https://[fd12::1]/hook", false},
		{"https://100.64.1.1/hook", false},
		{"https://localhost/hook", false},
		{"https://metadata.internal/latest", false},
		{"https://rebind.example/hook", false},
		{"https://nowhere.example/hook", false},
		{"https://user:pw@hooks.example.com/hook", false},
		{"ftp://hooks.example.com/hook", false},
		{"/relative", false},
		{"https://0.0.0.0/hook", false},
	}
	for _, tt := range tests {
		err := strict.CheckURL(context.Background(), tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%s) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && !egress.IsRefused(err) {
			t.Errorf("CheckURL(%s) = %v, not a refusal", tt.url, err)
		}
	}
	dev := egress.Policy{AllowPrivate: true}
	for _, u := range []string{"http://127.0.0.1:9999/hook", "https://localhost/hook"} {
		if err := dev.CheckURL(context.Background(), u); err != nil {
			t.Errorf("dev mode refused %s: %v", u, err)
		}
	}
}

// A name that was public at registration and resolves inside later (DNS
// rebinding) is refused when dialled: the check runs on the address
// connected to, not on the name.
func TestTheDialledAddressIsChecked(t *testing.T) {
	t.Parallel()
	hit := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hit <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	port := netip.MustParseAddrPort(srv.Listener.Addr().String()).Port()
	dns := fakeDNS{"rebind.example": addrs("127.0.0.1")}
	url := "http://rebind.example:" + strconv.Itoa(int(port)) + "/hook"

	strict := egress.Policy{Resolver: dns}
	_, err := strict.Client(2*time.Second).Post(url, "application/json", nil)
	if !egress.IsRefused(err) {
		t.Fatalf("POST to a name resolving to 127.0.0.1 = %v, want a refusal", err)
	}
	_, err = strict.Client(2*time.Second).Post(srv.URL, "application/json", nil)
	if !egress.IsRefused(err) {
		t.Fatalf("POST to 127.0.0.1 = %v, want a refusal", err)
	}
	select {
	case <-hit:
		t.Fatal("the receiver on 127.0.0.1 was reached")
	default:
	}
	resp, err := egress.Policy{AllowPrivate: true, Resolver: dns}.Client(2*time.Second).Post(url, "application/json", nil)
	if err != nil {
		t.Fatalf("dev mode: %v", err)
	}
	egress.Drain(resp.Body, 1024)
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	followed := make(chan struct{}, 1)
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed <- struct{}{} }))
	t.Cleanup(target.Close)
	srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(srv.Close)
	resp, err := egress.Policy{AllowPrivate: true}.Client(2*time.Second).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	egress.Drain(resp.Body, 1024)
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("status = %d, want the 307 itself", resp.StatusCode)
	}
	select {
	case <-followed:
		t.Error("the redirect was followed")
	default:
	}
}
