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

// Forecast asks the plugin for a forecast. Every channel of req.Series must
// have the same length.
func (c *ForecasterClient) Forecast(ctx context.Context, req sdk.ForecastRequest) (sdk.Forecast, error) {
	if c.p.Exited() {
		return sdk.Forecast{}, c.p.exitedError("forecast")
	}
	channels := len(req.Series)
	steps := 0
	if channels > 0 {
		steps = len(req.Series[0])
	}
	for ch, s := range req.Series {
		if len(s) != steps {
			return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w: channel %d has %d steps, channel 0 has %d", c.p.name, sdk.ErrInvalid, ch, len(s), steps)
		}
	}
	r, err := c.rpc.Forecast(ctx, &pb.ForecastRequest{
		Model:   req.Model,
		Series:  wire.PackF32Rows(channels, steps, func(i int) []float32 { return req.Series[i] }),
		Horizon: int64(req.Horizon),
	})
	if err != nil {
		return sdk.Forecast{}, c.p.callError("forecast", err)
	}
	flat, err := wire.UnpackF32(r.Forecast, nil, int64(channels), int64(req.Horizon))
	if err != nil {
		return sdk.Forecast{}, fmt.Errorf("plugin %s: forecast: %w", c.p.name, err)
	}
	out := sdk.Forecast{Values: make([][]float32, channels)}
	for ch := range out.Values {
		out.Values[ch] = flat[ch*req.Horizon : (ch+1)*req.Horizon : (ch+1)*req.Horizon]
	}
	return out, nil
}
