package main

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestTag checks that every version becomes a tag Docker accepts, and that
// one that already is a tag stays as it is.
func TestTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version, want string
	}{
		{"v1.2.3", "v1.2.3"},
		{"a9b9236-dirty", "a9b9236-dirty"},
		{"v1.2.3+meta.1", "v1.2.3-meta.1"},
		{"feature/x", "feature-x"},
		{".hidden", "hidden"},
		{"", "dev"},
		{strings.Repeat("a", 200), strings.Repeat("a", 128)},
	}
	for _, tt := range tests {
		got := Tag(tt.version)
		if got != tt.want {
			t.Errorf("Tag(%q) = %q, want %q", tt.version, got, tt.want)
		}
		if _, err := name.NewTag(ImageRef("balance", tt.version)); err != nil {
			t.Errorf("ImageRef for %q is not a valid tag: %v", tt.version, err)
		}
	}
}
