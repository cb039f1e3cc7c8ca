package consenttest_test

import (
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
)

// The fake stands in wherever the kit and the streams take the checker.
var (
	_ access.ConsentChecker = (*consenttest.Consent)(nil)
	_ access.Recorder       = (*consenttest.Consent)(nil)
	_ stream.Consent        = (*consenttest.Consent)(nil)
)
