package chaos_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	chaos "github.com/chaos-orchestrator/sdk-go"
)

// httpMethods are the keys of an OpenAPI path item that are operations.
var httpMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true,
}

// documentOperations reads the operations of an OpenAPI document as METHOD PATH (id).
func documentOperations(t *testing.T, document []byte) map[string]bool {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(document, &doc); err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	found := map[string]bool{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !httpMethods[method] {
				continue
			}
			var op struct {
				OperationID string `json:"operationId"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			found[chaos.Operation{ID: op.OperationID, Method: strings.ToUpper(method), Path: path}.String()] = true
		}
	}
	return found
}

// TestOperationsMatchTheDocument keeps chaos.Operations, and so the client's methods, in step
// with the document a live apiserver serves.
func TestOperationsMatchTheDocument(t *testing.T) {
	client := liveClient(t)
	document, err := client.GetOpenapi(withTimeout(t, 30*time.Second))
	if err != nil {
		t.Fatalf("GetOpenapi: %v", err)
	}
	inDocument := documentOperations(t, document)
	inTable := map[string]bool{}
	for _, op := range chaos.Operations {
		if inTable[op.String()] {
			t.Errorf("chaos.Operations lists %s twice", op)
		}
		inTable[op.String()] = true
	}
	if missing := difference(inDocument, inTable); len(missing) > 0 {
		t.Errorf("the document has operations chaos.Operations lacks (add them, and a method each):\n  %s",
			strings.Join(missing, "\n  "))
	}
	if extra := difference(inTable, inDocument); len(extra) > 0 {
		t.Errorf("chaos.Operations has operations the document lacks (renamed or removed?):\n  %s",
			strings.Join(extra, "\n  "))
	}
}

// TestOperationIDsAreUnique needs no server: the client looks operations up by id.
func TestOperationIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, op := range chaos.Operations {
		if seen[op.ID] {
			t.Errorf("operation id %s twice", op.ID)
		}
		seen[op.ID] = true
	}
}

// difference is what a has and b lacks, sorted.
func difference(a, b map[string]bool) []string {
	var out []string
	for key := range a {
		if !b[key] {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}
