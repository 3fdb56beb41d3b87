package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/carryon/carryon/models/safetensors"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/host"
	"github.com/carryon/carryon/sdk/sdktest"
)

// writeBiasHead writes a bias head directory and returns its path.
func writeBiasHead(t *testing.T, scale float32, bias []float32, fault string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := config{Type: "bias", Base: base{Arch: "llama", Dim: len(bias), Fingerprint: "sha256:example"}, Scale: scale, Fault: fault}
	js, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	w := safetensors.NewWriter()
	if err := w.AddFloat32("bias", safetensors.F32, []int{len(bias)}, bias); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(filepath.Join(dir, "weights.safetensors")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBiasHead(t *testing.T) {
	dir := writeBiasHead(t, 0.5, []float32{1, -1, 0.25, 0}, "")
	sdktest.RunHead(t, newBiasHeads(hclog.NewNullLogger()), ".", func(t *testing.T, h sdk.Head) {
		ctx := context.Background()
		info, err := h.Load(ctx, "b", dir)
		if err != nil {
			t.Fatal(err)
		}
		if info.Dim != 4 || info.Type != "bias" || len(info.Version) != 64 {
			t.Fatalf("HeadInfo %+v", info)
		}
		out, err := h.Forward(ctx, []sdk.Row{
			{Head: "b", Seq: 1, Pos: 0, Hidden: []float32{2, 2, 2, 2}},
			{Head: "b", Seq: 2, Pos: 0, Hidden: []float32{0, 4, -8, 1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		// delta = (0.5 − 1)·x + bias
		want := [][]float32{{0, -2, -0.75, -1}, {1, -3, 4.25, -0.5}}
		for i := range want {
			for j := range want[i] {
				if out[i][j] != want[i][j] {
					t.Fatalf("row %d: %v, want %v", i, out[i], want[i])
				}
			}
		}
		if _, err := h.Forward(ctx, []sdk.Row{{Head: "x", Hidden: make([]float32, 4)}}); !errors.Is(err, sdk.ErrUnknownHead) {
			t.Errorf("unknown head: %v", err)
		}
		if _, err := h.Load(ctx, "bad", t.TempDir()); !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("empty directory: %v", err)
		}
	})
}

// TestCrashIsReported makes the plugin process die in the middle of a
// Forward call, once by a panic and once by exiting: the call must fail
// promptly with ErrExited, not hang, and the host must see the exit.
func TestCrashIsReported(t *testing.T) {
	bin := sdktest.Build(t, ".")
	for _, fault := range []string{"panic", "exit"} {
		t.Run(fault, func(t *testing.T) {
			h := sdktest.StartHead(t, bin)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := h.Load(ctx, "ok", writeBiasHead(t, 1, []float32{1, 2}, "")); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Load(ctx, "crash", writeBiasHead(t, 1, []float32{1, 2}, fault)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Forward(ctx, []sdk.Row{{Head: "ok", Hidden: []float32{0, 0}}}); err != nil {
				t.Fatal(err)
			}
			_, err := h.Forward(ctx, []sdk.Row{{Head: "crash", Hidden: []float32{0, 0}}})
			if err == nil {
				t.Fatal("Forward of a crashing head succeeded")
			}
			if ctx.Err() != nil {
				t.Fatalf("Forward hung until the deadline: %v", err)
			}
			if !errors.Is(err, host.ErrExited) {
				t.Fatalf("Forward error %v does not wrap host.ErrExited", err)
			}
			select {
			case <-h.Plugin().Done():
			case <-ctx.Done():
				t.Fatal("Done not closed after the crash")
			}
			// Later calls fail at once, with the same kind.
			if _, err := h.Forward(ctx, []sdk.Row{{Head: "ok", Hidden: []float32{0, 0}}}); !errors.Is(err, host.ErrExited) {
				t.Fatalf("call after the crash: %v", err)
			}
			if err := h.Plugin().Ping(ctx); !errors.Is(err, host.ErrExited) {
				t.Fatalf("Ping after the crash: %v", err)
			}
		})
	}
}
