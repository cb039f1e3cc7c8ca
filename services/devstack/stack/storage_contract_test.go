package stack

// The storage-unavailable contract test: every RPC served by a process
// that keeps a database (its Needs declare Storage) promises UNAVAILABLE
// (STORAGE_UNAVAILABLE) in its comment or its service's, and no RPC of a
// process without one does. The kit answers it for any lost database
// connection (platform/server's mask_test.go, storage's retry_test.go, each
// store's lostconn_test.go, and the fault matrix's pg-restart row through
// the stack). It breaks a contract on purpose to prove it notices.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/bankbridge/bankbridge/gen/descriptor"
)

var storageUnavailable = regexp.MustCompile(`UNAVAILABLE \(STORAGE_UNAVAILABLE\)`)

// storageProblems checks every RPC of package bankbridge.<process>.v1
// against the process's Needs.Storage.
func storageProblems(t *testing.T, fds *descriptorpb.FileDescriptorSet, table []Process) []string {
	t.Helper()
	files, err := protodesc.NewFiles(fds)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, p := range table {
		if p.Kind == Service {
			stored["bankbridge."+p.Name+".v1"] = p.Needs.Storage
		}
	}
	var problems []string
	seen := map[string]bool{}
	files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		withDB, served := stored[string(f.Package())]
		if !served {
			return true
		}
		seen[string(f.Package())] = true
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			forAll := storageUnavailable.MatchString(comment(s))
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				promised := forAll || storageUnavailable.MatchString(comment(m))
				switch {
				case withDB && !promised:
					problems = append(problems, fmt.Sprintf("%s: its process keeps a database, and the kit answers UNAVAILABLE (STORAGE_UNAVAILABLE) when it cannot reach it, but neither its comment nor its service's says so", m.FullName()))
				case !withDB && promised:
					problems = append(problems, fmt.Sprintf("%s: promises UNAVAILABLE (STORAGE_UNAVAILABLE), but its process keeps no database", m.FullName()))
				}
			}
		}
		return true
	})
	if len(seen) < 5 {
		problems = append(problems, fmt.Sprintf("only %d of the stack's services have a contract package bankbridge.<name>.v1; is the naming still so?", len(seen)))
	}
	return problems
}

func comment(d protoreflect.Descriptor) string {
	return d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments
}

func TestEveryRPCOfAServiceWithADatabasePromisesStorageUnavailable(t *testing.T) {
	t.Parallel()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range storageProblems(t, fds, Table()) {
		t.Error(p)
	}
}

func TestTheStorageContractTestNotices(t *testing.T) {
	t.Parallel()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a process with a database whose contract is silent", func(t *testing.T) {
		t.Parallel()
		edited := descriptorWithout(t, fds, "bankbridge.receipts.v1")
		if p := storageProblems(t, edited, Table()); !mentionsAny(p, "bankbridge.receipts.v1.ReceiptsService.") {
			t.Errorf("problems = %q", p)
		}
	})
	t.Run("a process without one that promises it", func(t *testing.T) {
		t.Parallel()
		table := Table()
		for i := range table {
			if table[i].Name == "receipts" {
				table[i].Needs.Storage = false
			}
		}
		if p := storageProblems(t, fds, table); !mentionsAny(p, "but its process keeps no database") {
			t.Errorf("problems = %q", p)
		}
	})
}

// descriptorWithout is fds with the promise cut from every comment in pkg.
func descriptorWithout(t *testing.T, fds *descriptorpb.FileDescriptorSet, pkg string) *descriptorpb.FileDescriptorSet {
	t.Helper()
	out := &descriptorpb.FileDescriptorSet{}
	for _, f := range fds.GetFile() {
		f = proto.Clone(f).(*descriptorpb.FileDescriptorProto)
		if f.GetPackage() == pkg {
			for _, loc := range f.GetSourceCodeInfo().GetLocation() {
				if loc.LeadingComments != nil {
					s := storageUnavailable.ReplaceAllString(loc.GetLeadingComments(), "UNAVAILABLE")
					loc.LeadingComments = &s
				}
			}
		}
		out.File = append(out.File, f)
	}
	return out
}

func mentionsAny(problems []string, s string) bool {
	for _, p := range problems {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}
