package names_test

import (
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

func TestClientNames(t *testing.T) {
	t.Parallel()
	d := names.Endpoint{Client: "chat-app", ID: "ep_1"}.Delivery("dl_9")
	if got := d.String(); got != "clients/chat-app/endpoints/ep_1/deliveries/dl_9" {
		t.Fatalf("String = %q", got)
	}
	if back, err := names.ParseDelivery(d.String()); err != nil || back != d {
		t.Errorf("ParseDelivery = %+v, %v", back, err)
	}
	if e, err := names.ParseEndpoint("clients/chat-app/endpoints/ep_1"); err != nil || e != d.Endpoint {
		t.Errorf("ParseEndpoint = %+v, %v", e, err)
	}
	if c, err := names.ParseClient("clients/chat-app"); err != nil || c != "chat-app" {
		t.Errorf("ParseClient = %q, %v", c, err)
	}
	tests := []struct {
		name   string
		client string
		ok     bool
	}{
		{"clients/chat-app", "chat-app", true},
		{"clients/chat-app/endpoints/ep", "chat-app", true},
		{"clients/", "", false},
		{"users/chat-app", "", false},
		{"clientsX/chat-app", "", false},
	}
	for _, tt := range tests {
		if c, ok := names.ClientOf(tt.name); c != tt.client || ok != tt.ok {
			t.Errorf("ClientOf(%q) = %q, %v; want %q, %v", tt.name, c, ok, tt.client, tt.ok)
		}
	}
	for _, bad := range []string{"clients/a/endpoints", "clients/a/endpoints/", "users/a/endpoints/b", "clients//endpoints/b"} {
		if _, err := names.ParseEndpoint(bad); err == nil {
			t.Errorf("ParseEndpoint(%q) accepted", bad)
		}
	}
}
