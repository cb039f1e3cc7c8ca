package descriptor_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bankbridge/bankbridge/gen/descriptor"
)

// alignedEnums are the enums the support service passes between the public
// contract and the adapter protocol by number. Each pair must agree: a value
// both have has the same number, and a value only one side has is listed
// here, with why.
var alignedEnums = []struct {
	public, adapter string
	// publicOnly and adapterOnly are value names without the enum prefix.
	publicOnly, adapterOnly []string
	// Prefixes of the values, when the two enums' names differ.
	publicPrefix, adapterPrefix string
}{
	{public: "bankbridge.support.v1.FraudCategory", adapter: "bankbridge.adapter.v1.FraudCategory"},
	{public: "bankbridge.support.v1.CardBlockStatus", adapter: "bankbridge.adapter.v1.CardBlockStatus",
		publicOnly: []string{"NOT_SUPPORTED"}}, // bankbridge's own: the adapter has no CARDS capability
	{public: "bankbridge.support.v1.CardBlockReason", adapter: "bankbridge.adapter.v1.CardBlockReason"},
	{public: "bankbridge.support.v1.CardState", adapter: "bankbridge.adapter.v1.CardState"},
	{public: "bankbridge.support.v1.FraudReportStatus", adapter: "bankbridge.adapter.v1.FraudCaseStatus",
		publicPrefix: "FRAUD_REPORT_STATUS_", adapterPrefix: "FRAUD_CASE_STATUS_",
		publicOnly: []string{"SUBMITTING"}}, // bankbridge's own: delivery to the bank pending
	{public: "bankbridge.support.v1.AlertResponse", adapter: "bankbridge.adapter.v1.FraudAlertAnswer",
		publicPrefix: "ALERT_RESPONSE_", adapterPrefix: "FRAUD_ALERT_ANSWER_"},
	{public: "bankbridge.support.v1.AlertSeverity", adapter: "bankbridge.adapter.v1.FraudSeverity",
		publicPrefix: "ALERT_SEVERITY_", adapterPrefix: "FRAUD_SEVERITY_"},
}

// TestAlignedEnums keeps the adapter protocol's fraud and card enums and the
// public contract's in step, so a value converted by number means the same
// on both sides.
func TestAlignedEnums(t *testing.T) {
	t.Parallel()
	files := registry(t)
	for _, tt := range alignedEnums {
		t.Run(tt.public, func(t *testing.T) {
			t.Parallel()
			pub := enumValues(t, files, tt.public, tt.publicPrefix)
			adp := enumValues(t, files, tt.adapter, tt.adapterPrefix)
			for _, p := range alignmentProblems(pub, adp, tt.publicOnly, tt.adapterOnly) {
				t.Error(p)
			}
		})
	}
}

// TestAlignmentProblemsCatchesDrift proves the check fails on the drift it
// exists for: a renumbered value and a value one side lacks.
func TestAlignmentProblemsCatchesDrift(t *testing.T) {
	t.Parallel()
	pub := map[string]int32{"UNSPECIFIED": 0, "CARD_LOST": 1, "CARD_STOLEN": 2}
	adp := map[string]int32{"UNSPECIFIED": 0, "CARD_LOST": 2, "SCAM": 3}
	got := alignmentProblems(pub, adp, nil, nil)
	want := []string{
		"CARD_LOST is 1 in the public enum and 2 in the adapter's",
		"CARD_STOLEN is only in the public enum",
		"SCAM is only in the adapter's enum",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func alignmentProblems(pub, adp map[string]int32, publicOnly, adapterOnly []string) []string {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(pub)) {
		n, ok := adp[name]
		switch {
		case ok && n != pub[name]:
			problems = append(problems, fmt.Sprintf("%s is %d in the public enum and %d in the adapter's", name, pub[name], n))
		case !ok && !slices.Contains(publicOnly, name):
			problems = append(problems, fmt.Sprintf("%s is only in the public enum", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(adp)) {
		if _, ok := pub[name]; !ok && !slices.Contains(adapterOnly, name) {
			problems = append(problems, fmt.Sprintf("%s is only in the adapter's enum", name))
		}
	}
	return problems
}

func registry(t *testing.T) *protoregistry.Files {
	t.Helper()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(fds)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func enumValues(t *testing.T, files *protoregistry.Files, name, prefix string) map[string]int32 {
	t.Helper()
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	ed, ok := d.(protoreflect.EnumDescriptor)
	if !ok {
		t.Fatalf("%s is not an enum", name)
	}
	if prefix == "" {
		prefix = upperSnake(string(ed.Name())) + "_"
	}
	out := map[string]int32{}
	for i := range ed.Values().Len() {
		v := ed.Values().Get(i)
		out[strings.TrimPrefix(string(v.Name()), prefix)] = int32(v.Number())
	}
	return out
}

// upperSnake turns FraudCategory into FRAUD_CATEGORY.
func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
