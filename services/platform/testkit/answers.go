package testkit

import (
	"sync"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// SameAnswers makes n calls of call at once, as a client retrying on
// several connections does, and fails the test unless every caller got the
// first one's answer: the same response, or the same status with the same
// details. It returns the first answer for the caller to check.
func SameAnswers[R proto.Message](t testing.TB, what string, n int, call func() (R, error)) (R, error) {
	t.Helper()
	resps := make([]R, n)
	errs := make([]error, n)
	begin := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-begin
			resps[i], errs[i] = call()
		})
	}
	close(begin)
	wg.Wait()
	for i := 1; i < n; i++ {
		if !proto.Equal(status.Convert(errs[i]).Proto(), status.Convert(errs[0]).Proto()) ||
			(errs[i] == nil && !proto.Equal(resps[i], resps[0])) {
			t.Errorf("%s: call %d got %v, %v; call 0 got %v, %v", what, i, resps[i], errs[i], resps[0], errs[0])
		}
	}
	return resps[0], errs[0]
}
