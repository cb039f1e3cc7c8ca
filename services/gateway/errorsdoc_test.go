package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// TestTheErrorTableCoversEveryReason holds docs/errors.md, the table a
// product reads, to the contract: every ErrorReason has a row, with the
// gRPC code the reason always carries and the HTTP status the gateway
// answers it with, and the table names no reason that does not exist.
func TestTheErrorTableCoversEveryReason(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| ([^|]+) \\| ([A-Z_]+) \\| (.+) \\|$")
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		rows[m[1]] = m[2:]
	}
	values := commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED.Descriptor().Values()
	for i := range values.Len() {
		v := values.Get(i)
		if v.Number() == 0 {
			continue
		}
		name := strings.TrimPrefix(string(v.Name()), "ERROR_REASON_")
		r, ok := rows[name]
		if !ok {
			t.Errorf("docs/errors.md has no row for %s", name)
			continue
		}
		delete(rows, name)
		grpcCode := proto.GetExtension(v.Options(), commonv1.E_GrpcCode).(code.Code)
		if r[1] != grpcCode.String() {
			t.Errorf("%s: the table says gRPC %s, the contract %s", name, r[1], grpcCode)
		}
		want := strconv.Itoa(runtime.HTTPStatusFromCode(codes.Code(grpcCode)))
		if v.Number() == commonv1.ErrorReason_ERROR_REASON_REQUEST_TOO_LARGE.Number() {
			want = "413 or 431" // edge.go answers it with the limit's own status
		}
		if strings.TrimSpace(r[0]) != want {
			t.Errorf("%s: the table says HTTP %s, the gateway answers %s", name, r[0], want)
		}
		if len(strings.TrimSpace(r[2])) < 20 {
			t.Errorf("%s: no word on what the product should do", name)
		}
	}
	for name := range rows {
		t.Errorf("docs/errors.md lists %s, which is no ErrorReason", name)
	}
}
