// Command echohead is a minimal head plugin for the host package's tests:
// every head has Dim 4 and returns twice its input as the delta.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/carryon/carryon/sdk"
)

type heads struct {
	mu     sync.Mutex
	loaded map[string]bool
}

func (h *heads) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "echohead", Version: "test", Types: []string{"echo"}}, nil
}

func (h *heads) Load(_ context.Context, id, dir string) (sdk.HeadInfo, error) {
	if _, err := os.Stat(dir); err != nil {
		return sdk.HeadInfo{}, fmt.Errorf("load %s: %w: %v", id, sdk.ErrInvalid, err)
	}
	h.mu.Lock()
	h.loaded[id] = true
	h.mu.Unlock()
	// A logger made while serving still reaches the core.
	sdk.NewLogger("echohead").Info("loaded", "id", id)
	return sdk.HeadInfo{ID: id, Version: "v", Type: "echo", Dim: 4, Alpha: 1}, nil
}

func (h *heads) Unload(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.loaded[id] {
		return fmt.Errorf("unload %s: %w", id, sdk.ErrUnknownHead)
	}
	delete(h.loaded, id)
	return nil
}

func (h *heads) Forward(_ context.Context, rows []sdk.Row) ([][]float32, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([][]float32, len(rows))
	for i, r := range rows {
		if !h.loaded[r.Head] {
			return nil, fmt.Errorf("forward: %w %q", sdk.ErrUnknownHead, r.Head)
		}
		out[i] = make([]float32, len(r.Hidden))
		for j, v := range r.Hidden {
			out[i][j] = 2 * v
		}
	}
	return out, nil
}

func (h *heads) Release(context.Context, []sdk.SeqID) error { return nil }

func main() {
	sdk.ServeHead(&heads{loaded: map[string]bool{}})
}
