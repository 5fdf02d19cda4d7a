package chaos_test

import (
	"os"
	"strings"
	"testing"
)

// TestTheDocsShowTheSmokeExample: the Go program in docs/api.md is examples/smoke/main.go, which
// go vet and go build check; an edit of one without the other fails here.
func TestTheDocsShowTheSmokeExample(t *testing.T) {
	docs, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	smoke, err := os.ReadFile("examples/smoke/main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(docs), "\n### Go\n")
	_, program, fenced := strings.Cut(section, "\n```go\n")
	program, _, closed := strings.Cut(program, "\n```\n")
	if !found || !fenced || !closed {
		t.Fatal("docs/api.md has no ```go block under ### Go")
	}
	if program+"\n" != string(smoke) {
		t.Errorf("the program under ### Go in docs/api.md is not examples/smoke/main.go: copy it there")
	}
}
