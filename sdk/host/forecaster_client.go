package host

import (
	"context"
	"errors"
	"fmt"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/carryon/carryon/proto/carryon/v1"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/internal/wire"
)

// forecasterRPC is the generated client of the Forecaster service.
type forecasterRPC = pb.ForecasterClient

// forecasterPlugin is the go-plugin client side of a forecaster plugin.
type forecasterPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (forecasterPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("host: the forecaster server is in package sdk")
}

func (forecasterPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewForecasterClient(c), nil
}

// ForecasterClient calls a forecaster plugin. It implements sdk.Forecaster;
// its methods are safe for concurrent use and return *Error values.
type ForecasterClient struct {
	p   *Plugin
	rpc forecasterRPC
}

var _ sdk.Forecaster = (*ForecasterClient)(nil)

// Plugin returns the plugin the client calls.
func (c *ForecasterClient) Plugin() *Plugin { return c.p }

// Info asks the plugin to describe itself.
func (c *ForecasterClient) Info(ctx context.Context) (sdk.PluginInfo, error) {
	if c.p.Exited() {
		return sdk.PluginInfo{}, c.p.exitedError("info")
	}
	r, err := c.rpc.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return sdk.PluginInfo{}, c.p.callError("info", err)
	}
	return pluginInfoFromPB(r.Info), nil
}

// Load asks the plugin to load the model directory dir under id.
func (c *ForecasterClient) Load(ctx context.Context, id, dir string) (sdk.ForecasterInfo, error) {
	if c.p.Exited() {
		return sdk.ForecasterInfo{}, c.p.exitedError("load " + id)
	}
	r, err := c.rpc.Load(ctx, &pb.LoadForecasterRequest{Id: id, Dir: dir})
	if err != nil {
		return sdk.ForecasterInfo{}, c.p.callError("load "+id, err)
	}
	m := r.Model
	if m == nil {
		return sdk.ForecasterInfo{}, fmt.Errorf("plugin %s: load %s: empty answer", c.p.name, id)
	}
	return sdk.ForecasterInfo{ID: m.Id, Version: m.Version, Type: m.Type, Context: int(m.Context), Horizon: int(m.Horizon), Channels: int(m.Channels)}, nil
}

// Unload asks the plugin to drop a model.
func (c *ForecasterClient) Unload(ctx context.Context, id string) error {
	if c.p.Exited() {
		return c.p.exitedError("unload " + id)
	}
	if _, err := c.rpc.Unload(ctx, &pb.UnloadForecasterRequest{Id: id}); err != nil {
		return c.p.callError("unload "+id, err)
	}
	return nil
}

// Forecast asks the plugin for a forecast. Every channel of req.Series (or
// of an item's Series) must have the same length; an item's Known channels
// must each hold its steps plus req.Horizon values.
func (c *ForecasterClient) Forecast(ctx context.Context, req sdk.ForecastRequest) (sdk.Forecast, error) {
	if c.p.Exited() {
		return sdk.Forecast{}, c.p.exitedError("forecast")
	}
	if len(req.Items) > 0 {
		return c.forecastItems(ctx, req)
	}
	channels := len(req.Series)
	steps := 0
	if channels > 0 {
		steps = len(req.Series[0])
	}
	if err := sameLength(req.Series, steps); err != nil {
		return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w: %v", c.p.name, sdk.ErrInvalid, err)
	}
	r, err := c.rpc.Forecast(ctx, &pb.ForecastRequest{
		Model:     req.Model,
		Series:    wire.PackF32Rows(channels, steps, func(i int) []float32 { return req.Series[i] }),
		Horizon:   int64(req.Horizon),
		Quantiles: req.Quantiles,
		Guard:     req.Guard,
	})
	if err != nil {
		return sdk.Forecast{}, c.p.callError("forecast", err)
	}
	values, err := unpackRows(r.Forecast, channels, req.Horizon)
	if err != nil {
		return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w", c.p.name, err)
	}
	return sdk.Forecast{Values: values}, nil
}

// forecastItems sends a request of several items.
func (c *ForecasterClient) forecastItems(ctx context.Context, req sdk.ForecastRequest) (sdk.Forecast, error) {
	if len(req.Series) > 0 {
		return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w: both series and items given", c.p.name, sdk.ErrInvalid)
	}
	preq := &pb.ForecastRequest{Model: req.Model, Horizon: int64(req.Horizon), Quantiles: req.Quantiles, Guard: req.Guard,
		Items: make([]*pb.ForecastItem, len(req.Items))}
	for i, it := range req.Items {
		if len(it.Series) == 0 || len(it.Series[0]) == 0 {
			return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w: item %d has no history", c.p.name, sdk.ErrInvalid, i)
		}
		steps := len(it.Series[0])
		if err := sameLength(it.Series, steps); err != nil {
			return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w: item %d: %v", c.p.name, sdk.ErrInvalid, i, err)
		}
		pi := &pb.ForecastItem{Series: wire.PackF32Rows(len(it.Series), steps, func(k int) []float32 { return it.Series[k] })}
		if it.Timestamps != nil {
			if len(it.Timestamps) != steps {
				return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w: item %d has %d timestamps for %d steps", c.p.name, sdk.ErrInvalid, i, len(it.Timestamps), steps)
			}
			pi.Timestamps = make([]int64, steps)
			for k, t := range it.Timestamps {
				pi.Timestamps[k] = t.UnixNano()
			}
		}
		if len(it.Known) > 0 {
			if err := sameLength(it.Known, steps+req.Horizon); err != nil {
				return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w: item %d: known covariates: %v", c.p.name, sdk.ErrInvalid, i, err)
			}
			pi.Known = wire.PackF32Rows(len(it.Known), steps+req.Horizon, func(k int) []float32 { return it.Known[k] })
		}
		preq.Items[i] = pi
	}
	r, err := c.rpc.Forecast(ctx, preq)
	if err != nil {
		return sdk.Forecast{}, c.p.callError("forecast", err)
	}
	if len(r.Items) != len(req.Items) {
		return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %d items asked, %d answered", c.p.name, len(req.Items), len(r.Items))
	}
	out := sdk.Forecast{Items: make([]sdk.ItemForecast, len(r.Items))}
	for i, ri := range r.Items {
		channels := len(req.Items[i].Series)
		if ri == nil {
			return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: item %d: empty answer", c.p.name, i)
		}
		values, err := unpackRows(ri.Mean, channels, req.Horizon)
		if err != nil {
			return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: item %d: %w", c.p.name, i, err)
		}
		out.Items[i].Values = values
		if len(req.Quantiles) == 0 {
			continue
		}
		levels := len(req.Quantiles)
		flat, err := wire.UnpackF32(ri.Quantiles, nil, int64(levels), int64(channels), int64(req.Horizon))
		if err != nil {
			return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: item %d: quantiles: %w", c.p.name, i, err)
		}
		q := make([][][]float32, levels)
		for l := range q {
			q[l] = make([][]float32, channels)
			for ch := range q[l] {
				off := (l*channels + ch) * req.Horizon
				q[l][ch] = flat[off : off+req.Horizon : off+req.Horizon]
			}
		}
		out.Items[i].Quantiles = q
	}
	return out, nil
}

// sameLength reports whether every row has n values.
func sameLength(rows [][]float32, n int) error {
	for ch, s := range rows {
		if len(s) != n {
			return fmt.Errorf("channel %d has %d steps, want %d", ch, len(s), n)
		}
	}
	return nil
}

// unpackRows decodes a [rows, width] F32 tensor into rows.
func unpackRows(t *pb.Tensor, rows, width int) ([][]float32, error) {
	flat, err := wire.UnpackF32(t, nil, int64(rows), int64(width))
	if err != nil {
		return nil, err
	}
	out := make([][]float32, rows)
	for r := range out {
		out[r] = flat[r*width : (r+1)*width : (r+1)*width]
	}
	return out, nil
}
