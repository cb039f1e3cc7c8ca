package conformance

import (
	"time"

	"google.golang.org/protobuf/proto"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// testInfo is info/adapter-info: what the adapter says about itself, which
// every other check needs.
func (k *kit) testInfo(c *C) {
	info, err := k.client.GetAdapterInfo(k.ctx(c), &adapterv1.GetAdapterInfoRequest{})
	if !ok(c, "GetAdapterInfo", err) {
		c.FailNow()
	}
	k.check(c, "GetAdapterInfo", info)
	if len(info.GetCapabilities()) == 0 {
		c.Fatal("GetAdapterInfo: lists no capability")
	}
	k.capabilities = info.GetCapabilities()
	k.adapter = Adapter{
		BankID: info.GetBankId(), DisplayName: info.GetDisplayName(),
		AdapterVersion: info.GetAdapterVersion(), ProtocolVersion: info.GetProtocolVersion(),
	}
	for _, cp := range k.capabilities {
		k.adapter.Capabilities = append(k.adapter.Capabilities, capabilityName(cp))
	}
	if k.has(adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS) && !k.has(adapterv1.Capability_CAPABILITY_TRANSACTIONS) {
		c.Error("GetAdapterInfo: lists PURCHASE_DETAILS without TRANSACTIONS, whose transactions it details")
	}
	again, err := k.client.GetAdapterInfo(k.ctx(c), &adapterv1.GetAdapterInfoRequest{})
	if ok(c, "GetAdapterInfo again", err) && !proto.Equal(info, again) {
		c.Error("GetAdapterInfo: answers differently from one call to the next")
	}
}

// testHealth is health/check-health.
func (k *kit) testHealth(c *C) {
	start := time.Now()
	h, err := k.client.CheckHealth(k.ctx(c), &adapterv1.CheckHealthRequest{})
	if !ok(c, "CheckHealth", err) {
		return
	}
	k.check(c, "CheckHealth", h)
	if d := time.Since(start); d > time.Second {
		c.Errorf("CheckHealth: took %s; answer within a second, from recent calls", d.Round(time.Millisecond))
	}
}
