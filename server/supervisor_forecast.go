package server

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/host"
)

// forecasterPlugins returns the plugins that serve forecasters (running or
// restarting).
func (sv *supervisor) forecasterPlugins() []*pluginProc {
	var out []*pluginProc
	for _, pp := range sv.plugins {
		pp.mu.Lock()
		ok := pp.forecasts
		pp.mu.Unlock()
		if ok {
			out = append(out, pp)
		}
	}
	return out
}

// forecasterClient returns the forecaster client of the running process.
func (pp *pluginProc) forecasterClient() (*host.ForecasterClient, error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.fc == nil {
		return nil, fmt.Errorf("plugin %s: %w (restarting)", pp.name, errPluginDown)
	}
	return pp.fc, nil
}

// pluginInfo returns what the plugin said about itself at its last start.
func (pp *pluginProc) pluginInfo() sdk.PluginInfo {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.info
}

// loadForecaster loads a model directory under id and remembers it for
// restarts. The caller holds pp.admin.
func (pp *pluginProc) loadForecaster(ctx context.Context, id, dir string) (sdk.ForecasterInfo, error) {
	fc, err := pp.forecasterClient()
	if err != nil {
		return sdk.ForecasterInfo{}, err
	}
	info, err := fc.Load(ctx, id, dir)
	if err != nil {
		return sdk.ForecasterInfo{}, err
	}
	pp.mu.Lock()
	pp.fcLoaded[id] = dir
	pp.mu.Unlock()
	return info, nil
}

// unloadForecaster drops a model. The caller holds pp.admin.
func (pp *pluginProc) unloadForecaster(ctx context.Context, id string) error {
	pp.mu.Lock()
	delete(pp.fcLoaded, id)
	pp.mu.Unlock()
	fc, err := pp.forecasterClient()
	if err != nil {
		return nil // the restarted process will not load it
	}
	if err := fc.Unload(ctx, id); err != nil && !errors.Is(err, sdk.ErrUnknownHead) {
		return err
	}
	return nil
}

// reloadForecasters loads every model the plugin had loaded into fc, the
// client of its new process.
func (pp *pluginProc) reloadForecasters(ctx context.Context, fc *host.ForecasterClient) {
	pp.mu.Lock()
	ids := make([]string, 0, len(pp.fcLoaded))
	for id := range pp.fcLoaded {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = pp.fcLoaded[id]
	}
	pp.mu.Unlock()
	for i, id := range ids {
		lctx, cancel := context.WithTimeout(ctx, pluginCallTime)
		_, err := fc.Load(lctx, id, dirs[i])
		cancel()
		if err != nil {
			pp.log.Error("reloading a forecasting model after a restart failed", "plugin", pp.name, "model", id, "error", err)
		}
	}
}
