package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireSDK returns the node binary, skipping the test when node or the
// SDK is missing (failing it under CI=true).
func requireSDK(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("node_modules/openai/package.json"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the OpenAI Node SDK is not installed (%v): run make test-deps", err)
		}
		t.Skip("the OpenAI Node SDK is not installed in server/e2e/node_modules: run make test-deps (make test does)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not on PATH")
		}
		t.Skip("node is not on PATH")
	}
	return node
}

// TestOpenAINodeSDK runs openai_sdk.mjs, which drives the server through
// the official OpenAI Node SDK: chat and text completions, streaming and
// not, n=2, logprobs, usage, embeddings, model listing and error handling.
func TestOpenAINodeSDK(t *testing.T) {
	node := requireSDK(t)
	url := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "openai_sdk.mjs")
	cmd.Env = append(os.Environ(), "CARRYON_URL="+url, "CARRYON_MODEL=stories260k", "CARRYON_GREEDY="+storiesGreedy)
	out, err := cmd.CombinedOutput()
	t.Logf("node openai_sdk.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the SDK checks failed: %v", err)
	}
}

// TestOpenAINodeSDKMidStreamError shuts the server down with a short
// deadline while the SDK reads a long stream: the stream's error event
// must reach the SDK's caller as an APIError.
func TestOpenAINodeSDKMidStreamError(t *testing.T) {
	node := requireSDK(t)
	url, shutdown := startSlowServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "openai_midstream.mjs")
	cmd.Env = append(os.Environ(), "CARRYON_URL="+url, "CARRYON_MODEL=slow")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "streaming" {
		t.Fatalf("the script did not start streaming: %q %s", lines.Text(), stderr.String())
	}
	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	shutdown(sctx)
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	err = cmd.Wait()
	t.Logf("node openai_midstream.mjs:\n%s%s", rest.String(), stderr.String())
	if err != nil || !strings.Contains(rest.String(), "ok   APIError") {
		t.Fatalf("the SDK did not raise the stream's error: %v", err)
	}
}
