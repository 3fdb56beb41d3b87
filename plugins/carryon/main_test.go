package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/sdktest"
)

var testBase = carryon.Base{Arch: "llama", Dim: 48, Vocab: 512, Layers: 5, Context: 128, Fingerprint: "sha256:test"}

// writeHeads writes n random heads into dir/h0, dir/h1, ... and returns
// their directories.
func writeHeads(t testing.TB, dir string, n int, base carryon.Base, width int) []string {
	t.Helper()
	var dirs []string
	for i := range n {
		c := carryon.DefaultConfig(base)
		c.Width, c.Heads, c.FFN = width, 4, 2*width
		c.Seed = uint64(100 + i)
		c.Alpha = 30
		if i%3 == 1 {
			c.Bridge = carryon.Bridge{Kind: carryon.BridgeInt8}
		}
		if i%3 == 2 {
			c.Bridge = carryon.Bridge{Kind: carryon.BridgeLinear, Dim: width / 2}
			c.Blocks = 1
		}
		h, err := carryon.New(c)
		if err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(dir, fmt.Sprintf("h%d", i))
		if err := h.Save(d); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

func randomRows(rng *rand.Rand, n, w int) [][]float32 {
	if rng == nil {
		rng = rand.New(rand.NewPCG(3, 4))
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, w)
		for j := range out[i] {
			out[i][j] = float32(rng.NormFloat64())
		}
	}
	return out
}

// TestServedHeadsMatchInProcess runs the same mixed batches through the
// plugin (in-process over gRPC, then as a subprocess) and through a
// carryon.Set in the test, and wants the same deltas bit for bit.
func TestServedHeadsMatchInProcess(t *testing.T) {
	dirs := writeHeads(t, t.TempDir(), 3, testBase, 16)
	sdktest.RunHead(t, newHeads(carryon.NewSet()), ".", func(t *testing.T, h sdk.Head) {
		ctx := context.Background()
		ref := carryon.NewSet()
		for i, d := range dirs {
			id := fmt.Sprintf("head-%d", i)
			info, err := h.Load(ctx, id, d)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Load(id, d)
			if err != nil {
				t.Fatal(err)
			}
			if info.ID != id || info.Version != want.Version() || info.Type != "carryon" || info.Dim != 48 ||
				info.InputDim() != 48 || info.Base.Fingerprint != "sha256:test" || info.Parameters != want.Parameters() {
				t.Fatalf("HeadInfo %+v", info)
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		// Six sequences, two per head: a prefill of different lengths,
		// then decode steps; all in the same calls.
		lens := map[sdk.SeqID]int{}
		for step := range 4 {
			var rows []sdk.Row
			var refRows []carryon.Row
			for s := sdk.SeqID(1); s <= 6; s++ {
				n := 1
				if step == 0 {
					n = int(s)
				}
				for _, x := range randomRows(rng, n, 48) {
					r := sdk.Row{Head: fmt.Sprintf("head-%d", s%3), Seq: s, Pos: lens[s], Hidden: x}
					rows = append(rows, r)
					refRows = append(refRows, carryon.Row{Head: r.Head, Seq: carryon.SeqID(s), Pos: r.Pos, Input: x})
					lens[s]++
				}
			}
			got, err := h.Forward(ctx, rows)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Forward(ctx, refRows)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				for j := range want[i] {
					if got[i][j] != want[i][j] {
						t.Fatalf("step %d row %d[%d]: %v, in-process %v", step, i, j, got[i][j], want[i][j])
					}
				}
			}
		}

		// Errors come back as the sdk's kinds.
		_, err := h.Forward(ctx, []sdk.Row{{Head: "nope", Seq: 1, Pos: 0, Hidden: make([]float32, 48)}})
		if !errors.Is(err, sdk.ErrUnknownHead) {
			t.Errorf("unknown head: %v", err)
		}
		_, err = h.Forward(ctx, []sdk.Row{{Head: "head-0", Seq: 3, Pos: 7, Hidden: make([]float32, 48)}})
		if !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("position gap: %v", err)
		}
		bad := t.TempDir()
		os.WriteFile(filepath.Join(bad, carryon.ConfigFile), []byte(`{"type":"carryon"}`), 0o644)
		if _, err := h.Load(ctx, "bad", bad); !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("bad directory: %v", err)
		}
		if err := h.Unload(ctx, "nope"); !errors.Is(err, sdk.ErrUnknownHead) {
			t.Errorf("unload unknown: %v", err)
		}

		// Release, then a released sequence starts again at 0.
		if err := h.Release(ctx, []sdk.SeqID{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Forward(ctx, []sdk.Row{{Head: "head-1", Seq: 1, Pos: 1, Hidden: make([]float32, 48)}}); !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("continuing a released sequence: %v", err)
		}
		if _, err := h.Forward(ctx, []sdk.Row{{Head: "head-1", Seq: 1, Pos: 0, Hidden: make([]float32, 48)}}); err != nil {
			t.Errorf("restarting a released sequence: %v", err)
		}
		if err := h.Unload(ctx, "head-2"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Forward(ctx, []sdk.Row{{Head: "head-2", Seq: 5, Pos: 2, Hidden: make([]float32, 48)}}); !errors.Is(err, sdk.ErrUnknownHead) {
			t.Errorf("unloaded head: %v", err)
		}
	})
}
