package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHeadsPolicy checks the requests `carryon heads policy` sends: only
// the fields given, with the admin key.
func TestHeadsPolicy(t *testing.T) {
	type call struct {
		method, path, auth string
		body               map[string]any
	}
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c := call{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization")}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &c.body); err != nil {
				t.Errorf("body %q: %v", b, err)
			}
		}
		calls = append(calls, c)
		if strings.HasSuffix(r.URL.Path, "/missing") {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"message":"head missing does not exist."}}`)
			return
		}
		io.WriteString(w, `{"id":"alice","policy":"learn"}`)
	}))
	defer srv.Close()

	out, err := carryon(t, "heads", "policy", "alice", "learn", "--min-samples", "50", "--holdout", "0.2", "--url", srv.URL, "--admin-key", "k")
	if err != nil || !strings.Contains(out, `"policy": "learn"`) {
		t.Fatalf("policy: %v\n%s", err, out)
	}
	c := calls[0]
	if c.method != http.MethodPost || c.path != "/v1/heads/alice" || c.auth != "Bearer k" ||
		len(c.body) != 3 || c.body["policy"] != "learn" || c.body["min_samples"] != 50.0 || c.body["holdout"] != 0.2 {
		t.Fatalf("sent %+v", c)
	}
	if _, err := carryon(t, "heads", "policy", "alice", "--max-samples", "900", "--url", srv.URL); err != nil {
		t.Fatal(err)
	}
	if c := calls[1]; len(c.body) != 1 || c.body["max_samples"] != 900.0 {
		t.Fatalf("thresholds only: sent %+v", c)
	}
	// Without changes it shows the head.
	if _, err := carryon(t, "heads", "policy", "alice", "--url", srv.URL); err != nil || calls[2].method != http.MethodGet {
		t.Fatalf("show: %v, %+v", err, calls[2])
	}
	if _, err := carryon(t, "heads", "policy", "missing", "serve", "--url", srv.URL); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("a refused change: %v", err)
	}
}
