package protocol

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// CapabilityName is c without its CAPABILITY_ prefix, as errors name it.
func CapabilityName(c adapterv1.Capability) string {
	return strings.TrimPrefix(c.String(), "CAPABILITY_")
}

// CheckCapabilities reports a difference between what info lists and what
// the adapter implements.
func CheckCapabilities(info *adapterv1.GetAdapterInfoResponse, implemented []adapterv1.Capability) error {
	var listedOnly, implementedOnly []string
	for _, c := range info.GetCapabilities() {
		if !slices.Contains(implemented, c) {
			listedOnly = append(listedOnly, CapabilityName(c))
		}
	}
	for _, c := range implemented {
		if !slices.Contains(info.GetCapabilities(), c) {
			implementedOnly = append(implementedOnly, CapabilityName(c))
		}
	}
	var errs []error
	if len(listedOnly) > 0 {
		errs = append(errs, fmt.Errorf("adapter info lists capabilities it does not implement: %s", strings.Join(listedOnly, ", ")))
	}
	if len(implementedOnly) > 0 {
		errs = append(errs, fmt.Errorf("adapter info omits capabilities it implements: %s", strings.Join(implementedOnly, ", ")))
	}
	return errors.Join(errs...)
}
