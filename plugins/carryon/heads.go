package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/sdk"
)

// heads serves a carryon.Set through the sdk.Head interface, and trains
// new head versions (sdk.Trainer).
type heads struct {
	set *carryon.Set
	lm  lmHeads // the base model of the last training run
}

var _ sdk.Head = (*heads)(nil)

func newHeads(set *carryon.Set) *heads {
	return &heads{set: set}
}

// Info describes the plugin.
func (h *heads) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "carryon", Version: version, Types: []string{carryon.Type}, Training: true}, nil
}

// Load reads a carry-on head directory.
func (h *heads) Load(_ context.Context, id, dir string) (sdk.HeadInfo, error) {
	head, err := h.set.Load(id, dir)
	if err != nil {
		return sdk.HeadInfo{}, fmt.Errorf("%w: %w", sdk.ErrInvalid, err)
	}
	return headInfo(id, head), nil
}

// Unload drops a head and its sequences.
func (h *heads) Unload(_ context.Context, id string) error {
	if !h.set.Unload(id) {
		return fmt.Errorf("unload: %w %q", sdk.ErrUnknownHead, id)
	}
	return nil
}

// Forward runs rows through their heads.
func (h *heads) Forward(ctx context.Context, rows []sdk.Row) ([][]float32, error) {
	in := make([]carryon.Row, len(rows))
	for i, r := range rows {
		in[i] = carryon.Row{Head: r.Head, Seq: carryon.SeqID(r.Seq), Pos: r.Pos, Input: r.Hidden}
	}
	out, err := h.set.Forward(ctx, in)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, carryon.ErrUnknownHead):
		return nil, fmt.Errorf("forward: %w: %w", sdk.ErrUnknownHead, err)
	case errors.Is(err, carryon.ErrRows):
		return nil, fmt.Errorf("forward: %w: %w", sdk.ErrInvalid, err)
	}
	return nil, fmt.Errorf("forward: %w", err)
}

// Release drops sequences in every head.
func (h *heads) Release(_ context.Context, seqs []sdk.SeqID) error {
	ids := make([]carryon.SeqID, len(seqs))
	for i, s := range seqs {
		ids[i] = carryon.SeqID(s)
	}
	h.set.Release(ids...)
	return nil
}

func headInfo(id string, head *carryon.Head) sdk.HeadInfo {
	c := head.Config()
	return sdk.HeadInfo{
		ID:      id,
		Version: head.Version(),
		Type:    carryon.Type,
		Base: sdk.BaseModel{
			Arch:        c.Base.Arch,
			Dim:         c.Base.Dim,
			Vocab:       c.Base.Vocab,
			Layers:      c.Base.Layers,
			Fingerprint: c.Base.Fingerprint,
		},
		Taps:       c.Taps,
		Dim:        c.Base.Dim,
		Alpha:      c.Alpha,
		Parameters: head.Parameters(),
	}
}
