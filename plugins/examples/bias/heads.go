package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/carryon/carryon/models/safetensors"
	"github.com/carryon/carryon/sdk"
)

// config is a bias head's config.json.
type config struct {
	Type  string  `json:"type"`
	Base  base    `json:"base"`
	Scale float32 `json:"scale"`
	Fault string  `json:"fault,omitempty"`
}

type base struct {
	Arch        string `json:"arch"`
	Dim         int    `json:"dim"`
	Vocab       int    `json:"vocab"`
	Layers      int    `json:"layers"`
	Fingerprint string `json:"fingerprint"`
}

// head is a loaded bias head. It keeps no per-sequence state.
type head struct {
	cfg     config
	bias    []float32
	version string
}

// biasHeads implements sdk.Head.
type biasHeads struct {
	log   hclog.Logger
	mu    sync.RWMutex
	heads map[string]*head
}

var _ sdk.Head = (*biasHeads)(nil)

func newBiasHeads(log hclog.Logger) *biasHeads {
	return &biasHeads{log: log, heads: map[string]*head{}}
}

func (b *biasHeads) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "bias", Version: "1.0.0", Types: []string{"bias"}}, nil
}

func (b *biasHeads) Load(_ context.Context, id, dir string) (sdk.HeadInfo, error) {
	h, err := readHead(dir)
	if err != nil {
		// ErrInvalid tells the host that the directory is at fault.
		return sdk.HeadInfo{}, fmt.Errorf("load bias head %s: %w: %v", id, sdk.ErrInvalid, err)
	}
	b.mu.Lock()
	b.heads[id] = h
	b.mu.Unlock()
	b.log.Info("loaded head", "id", id, "version", h.version, "dir", dir)
	return sdk.HeadInfo{
		ID:      id,
		Version: h.version,
		Type:    "bias",
		Base: sdk.BaseModel{
			Arch: h.cfg.Base.Arch, Dim: h.cfg.Base.Dim, Vocab: h.cfg.Base.Vocab,
			Layers: h.cfg.Base.Layers, Fingerprint: h.cfg.Base.Fingerprint,
		},
		Taps:       []int{sdk.FinalLayer},
		Dim:        h.cfg.Base.Dim,
		Alpha:      1,
		Parameters: int64(len(h.bias)),
	}, nil
}

func readHead(dir string) (*head, error) {
	cdata, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	var cfg config
	if err := json.Unmarshal(cdata, &cfg); err != nil {
		return nil, fmt.Errorf("config.json: %v", err)
	}
	if cfg.Type != "bias" || cfg.Base.Dim <= 0 {
		return nil, fmt.Errorf("config.json: type %q, base dim %d: not a bias head", cfg.Type, cfg.Base.Dim)
	}
	wdata, err := os.ReadFile(filepath.Join(dir, "weights.safetensors"))
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Parse(wdata)
	if err != nil {
		return nil, err
	}
	t, ok := f.Tensor("bias")
	if !ok || len(t.Shape) != 1 || t.Shape[0] != cfg.Base.Dim {
		return nil, fmt.Errorf("weights.safetensors: need a tensor \"bias\" of shape [%d]", cfg.Base.Dim)
	}
	bias, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	sum.Write(cdata)
	sum.Write(wdata)
	return &head{cfg: cfg, bias: bias, version: hex.EncodeToString(sum.Sum(nil))}, nil
}

func (b *biasHeads) Unload(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.heads[id]; !ok {
		return fmt.Errorf("unload %q: %w", id, sdk.ErrUnknownHead)
	}
	delete(b.heads, id)
	return nil
}

func (b *biasHeads) Forward(_ context.Context, rows []sdk.Row) ([][]float32, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([][]float32, len(rows))
	for i, r := range rows {
		h, ok := b.heads[r.Head]
		if !ok {
			return nil, fmt.Errorf("forward: %w %q", sdk.ErrUnknownHead, r.Head)
		}
		d := h.cfg.Base.Dim
		if len(r.Hidden) != d {
			return nil, fmt.Errorf("forward: %w: row %d has %d floats, head %q reads %d", sdk.ErrInvalid, i, len(r.Hidden), r.Head, d)
		}
		switch h.cfg.Fault {
		case "panic":
			panic("bias head: fault injection: panic in Forward")
		case "exit":
			os.Exit(3)
		}
		delta := make([]float32, d)
		for j, x := range r.Hidden {
			delta[j] = (h.cfg.Scale-1)*x + h.bias[j]
		}
		out[i] = delta
	}
	return out, nil
}

// Release has nothing to do: bias heads keep no state per sequence.
func (b *biasHeads) Release(context.Context, []sdk.SeqID) error { return nil }
