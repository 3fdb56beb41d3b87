package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/carryon/carryon/models/gtt"
	"github.com/carryon/carryon/sdk"
)

// BuiltinModel is the id of the embedded pretrained model, served from the
// plugin's start.
const BuiltinModel = "gtt-small"

// forecasters is the plugin's set of loaded models. It implements
// sdk.Forecaster.
type forecasters struct {
	threads int

	mu     sync.RWMutex
	models map[string]loaded
}

// loaded is one model and its description.
type loaded struct {
	p    gtt.Predictor
	info sdk.ForecasterInfo
}

var _ sdk.Forecaster = (*forecasters)(nil)

// newForecasters returns the set holding the embedded model, forecasting
// with threads goroutines per call.
func newForecasters(threads int) (*forecasters, error) {
	m, _, err := gtt.Default()
	if err != nil {
		return nil, err
	}
	f := &forecasters{threads: max(threads, 1), models: map[string]loaded{}}
	f.models[BuiltinModel] = loaded{p: m.WithThreads(f.threads), info: describe(BuiltinModel, "embedded:"+gtt.DefaultCheckpoint, m.Config(), 0)}
	return f, nil
}

func describe(id, version string, cfg gtt.Config, channels int) sdk.ForecasterInfo {
	return sdk.ForecasterInfo{ID: id, Version: version, Type: "gtt", Context: cfg.Context, Horizon: cfg.PatchLen, Channels: channels}
}

// Info describes the plugin.
func (f *forecasters) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "gtt", Version: version, Types: []string{"gtt"}, Models: []string{BuiltinModel}}, nil
}

// Load reads a model directory (a tuned model, or any directory holding
// gtt's weights file) under id. The built-in id cannot be replaced.
func (f *forecasters) Load(_ context.Context, id, dir string) (sdk.ForecasterInfo, error) {
	if id == BuiltinModel {
		return sdk.ForecasterInfo{}, fmt.Errorf("load %s: %w: the id of the embedded model", id, sdk.ErrInvalid)
	}
	p, err := gtt.LoadPredictor(dir)
	if err != nil {
		return sdk.ForecasterInfo{}, fmt.Errorf("load %s: %w: %v", id, sdk.ErrInvalid, err)
	}
	version, err := dirVersion(dir)
	if err != nil {
		return sdk.ForecasterInfo{}, fmt.Errorf("load %s: %w", id, err)
	}
	channels := 0
	switch m := p.(type) {
	case *gtt.Tuned:
		channels = m.Channels()
		p = m.WithThreads(f.threads)
	case *gtt.Model:
		p = m.WithThreads(f.threads)
	}
	info := describe(id, version, p.Config(), channels)
	f.mu.Lock()
	f.models[id] = loaded{p: p, info: info}
	f.mu.Unlock()
	return info, nil
}

// dirVersion hashes the regular files of a model directory (or a weights
// file): names and contents, in name order.
func dirVersion(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("hash model: %w", err)
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return "", fmt.Errorf("hash model: %w", err)
		}
		files = files[:0]
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	h := sha256.New()
	for _, name := range files {
		fmt.Fprintf(h, "%s\x00", filepath.Base(name))
		fh, err := os.Open(name)
		if err != nil {
			return "", fmt.Errorf("hash model: %w", err)
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("hash model %s: %w", name, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Unload drops a loaded model; the built-in one stays.
func (f *forecasters) Unload(_ context.Context, id string) error {
	if id == BuiltinModel {
		return fmt.Errorf("unload %s: %w: the embedded model cannot be unloaded", id, sdk.ErrInvalid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.models[id]; !ok {
		return fmt.Errorf("unload %q: %w", id, sdk.ErrUnknownHead)
	}
	delete(f.models, id)
	return nil
}

// Forecast predicts every item of req in one batched pass per rollout step,
// guarded as req.Guard asks (see guarded), with the requested quantiles
// (see gtt.Quantiles).
func (f *forecasters) Forecast(ctx context.Context, req sdk.ForecastRequest) (sdk.Forecast, error) {
	f.mu.RLock()
	m, ok := f.models[req.Model]
	f.mu.RUnlock()
	if !ok {
		return sdk.Forecast{}, fmt.Errorf("forecast: %w %q", sdk.ErrUnknownHead, req.Model)
	}
	p, err := guarded(m.p, req.Guard)
	if err != nil {
		return sdk.Forecast{}, fmt.Errorf("forecast with %s: %w", req.Model, err)
	}
	items := req.AllItems()
	inputs := make([]gtt.Input, len(items))
	for i, it := range items {
		inputs[i] = gtt.Input{Series: it.Series, Timestamps: it.Timestamps, Known: it.Known}
	}
	preds, err := gtt.Quantiles(ctx, p, inputs, req.Horizon, req.Quantiles)
	if err != nil {
		if errors.Is(err, gtt.ErrInvalid) {
			return sdk.Forecast{}, fmt.Errorf("forecast with %s: %w: %v", req.Model, sdk.ErrInvalid, err)
		}
		return sdk.Forecast{}, fmt.Errorf("forecast with %s: %w", req.Model, err)
	}
	out := sdk.Forecast{Items: make([]sdk.ItemForecast, len(preds))}
	for i, p := range preds {
		out.Items[i] = sdk.ItemForecast{Values: p.Mean, Quantiles: p.Quantiles}
	}
	if len(req.Items) == 0 {
		out.Values = out.Items[0].Values
		out.Items = nil
	}
	return out, nil
}

// guarded returns p wrapped as guard (a sdk.ForecastRequest.Guard value)
// asks: GuardAuto, GuardSeasonal or "" guard random-walk channels with the
// naive forecast and mix the seasonal naive into seasonal ones and a damped
// trend into trending ones (gtt.Guard with Seasonal and Trend), GuardWalk
// does only the first, and GuardOff leaves p alone. Any other value is an error wrapping sdk.ErrInvalid.
func guarded(p gtt.Predictor, guard string) (gtt.Predictor, error) {
	switch guard {
	case "", sdk.GuardAuto, sdk.GuardSeasonal:
		return gtt.Guard{Predictor: p, Seasonal: true, Trend: true}, nil
	case sdk.GuardWalk:
		return gtt.Guard{Predictor: p}, nil
	case sdk.GuardOff:
		return p, nil
	}
	return nil, fmt.Errorf("%w: guard %q is none of %q, %q and %q", sdk.ErrInvalid, guard, sdk.GuardAuto, sdk.GuardWalk, sdk.GuardOff)
}
