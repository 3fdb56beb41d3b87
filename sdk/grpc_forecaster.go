package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/carryon/carryon/proto/carryon/v1"
	"github.com/carryon/carryon/sdk/internal/wire"
)

// forecasterPlugin is the go-plugin side of a forecaster plugin. The
// matching client is in package host.
type forecasterPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Forecaster
}

func (p *forecasterPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterForecasterServer(s, &forecasterServer{impl: p.impl})
	return nil
}

func (p *forecasterPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the forecaster client is in package sdk/host")
}

// forecasterServer adapts a Forecaster to the generated gRPC service.
type forecasterServer struct {
	pb.UnimplementedForecasterServer
	impl Forecaster
}

func (s *forecasterServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.InfoResponse{Info: pluginInfoToPB(info)}, nil
}

func (s *forecasterServer) Load(ctx context.Context, req *pb.LoadForecasterRequest) (*pb.LoadForecasterResponse, error) {
	if req.Id == "" || req.Dir == "" {
		return nil, invalid("load forecaster %q from %q: empty id or directory", req.Id, req.Dir)
	}
	info, err := s.impl.Load(ctx, req.Id, req.Dir)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LoadForecasterResponse{Model: &pb.ForecasterSpec{
		Id:       info.ID,
		Version:  info.Version,
		Type:     info.Type,
		Context:  int64(info.Context),
		Horizon:  int64(info.Horizon),
		Channels: int64(info.Channels),
	}}, nil
}

func (s *forecasterServer) Unload(ctx context.Context, req *pb.UnloadForecasterRequest) (*pb.UnloadForecasterResponse, error) {
	if err := s.impl.Unload(ctx, req.Id); err != nil {
		return nil, toStatus(err)
	}
	return &pb.UnloadForecasterResponse{}, nil
}

func (s *forecasterServer) Forecast(ctx context.Context, req *pb.ForecastRequest) (*pb.ForecastResponse, error) {
	if req.Horizon <= 0 || req.Horizon > 1<<24 {
		return nil, invalid("forecast with %q: horizon %d out of range", req.Model, req.Horizon)
	}
	if err := checkQuantileLevels(req.Quantiles); err != nil {
		return nil, invalid("forecast with %q: %v", req.Model, err)
	}
	horizon := int(req.Horizon)
	if len(req.Items) == 0 {
		series, err := unpackChannels(req.Series, -1)
		if err != nil {
			return nil, invalid("forecast with %q: series: %v", req.Model, err)
		}
		fc, err := s.impl.Forecast(ctx, ForecastRequest{Model: req.Model, Series: series, Horizon: horizon, Quantiles: req.Quantiles, Guard: req.Guard})
		if err != nil {
			return nil, toStatus(err)
		}
		values := fc.Values
		if values == nil && len(fc.Items) == 1 {
			values = fc.Items[0].Values
		}
		out, err := packChannels(values, len(series), horizon)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "forecast with %q: %v", req.Model, err)
		}
		return &pb.ForecastResponse{Forecast: out}, nil
	}
	if req.Series != nil && len(req.Series.Data) > 0 {
		return nil, invalid("forecast with %q: both series and items given", req.Model)
	}
	items := make([]ForecastItem, len(req.Items))
	for i, it := range req.Items {
		if it == nil {
			return nil, invalid("forecast with %q: item %d is empty", req.Model, i)
		}
		series, err := unpackChannels(it.Series, -1)
		if err != nil {
			return nil, invalid("forecast with %q: item %d: series: %v", req.Model, i, err)
		}
		steps := len(series[0])
		items[i].Series = series
		if len(it.Timestamps) > 0 {
			if len(it.Timestamps) != steps {
				return nil, invalid("forecast with %q: item %d: %d timestamps for %d steps", req.Model, i, len(it.Timestamps), steps)
			}
			items[i].Timestamps = make([]time.Time, steps)
			for k, ns := range it.Timestamps {
				items[i].Timestamps[k] = time.Unix(0, ns).UTC()
			}
		}
		if it.Known != nil && len(it.Known.Shape) > 0 {
			if items[i].Known, err = unpackChannels(it.Known, int64(steps+horizon)); err != nil {
				return nil, invalid("forecast with %q: item %d: known covariates: %v", req.Model, i, err)
			}
		}
	}
	fc, err := s.impl.Forecast(ctx, ForecastRequest{Model: req.Model, Horizon: horizon, Items: items, Quantiles: req.Quantiles, Guard: req.Guard})
	if err != nil {
		return nil, toStatus(err)
	}
	if len(fc.Items) != len(items) {
		return nil, status.Errorf(codes.Internal, "forecast with %q: %d items in, %d out", req.Model, len(items), len(fc.Items))
	}
	resp := &pb.ForecastResponse{Items: make([]*pb.ItemForecast, len(items))}
	for i, f := range fc.Items {
		channels := len(items[i].Series)
		mean, err := packChannels(f.Values, channels, horizon)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "forecast with %q: item %d: %v", req.Model, i, err)
		}
		out := &pb.ItemForecast{Mean: mean}
		if len(req.Quantiles) > 0 {
			if len(f.Quantiles) != len(req.Quantiles) {
				return nil, status.Errorf(codes.Internal, "forecast with %q: item %d: %d quantile levels asked, %d returned", req.Model, i, len(req.Quantiles), len(f.Quantiles))
			}
			flat := make([]float32, 0, len(f.Quantiles)*channels*horizon)
			for l, q := range f.Quantiles {
				if err := checkChannels(q, channels, horizon); err != nil {
					return nil, status.Errorf(codes.Internal, "forecast with %q: item %d: quantile %d: %v", req.Model, i, l, err)
				}
				for _, v := range q {
					flat = append(flat, v...)
				}
			}
			out.Quantiles = wire.PackF32(flat, int64(len(f.Quantiles)), int64(channels), int64(horizon))
		}
		resp.Items[i] = out
	}
	return resp, nil
}

// checkQuantileLevels reports whether levels are in (0, 1) and increasing.
func checkQuantileLevels(levels []float64) error {
	for i, q := range levels {
		if !(q > 0 && q < 1) {
			return fmt.Errorf("quantile level %v is outside (0, 1)", q)
		}
		if i > 0 && q <= levels[i-1] {
			return fmt.Errorf("quantile levels are not increasing (%v after %v)", q, levels[i-1])
		}
	}
	return nil
}

// unpackChannels decodes a [channels, steps] F32 tensor with at least one
// channel and one step (steps = want unless want is negative).
func unpackChannels(t *pb.Tensor, want int64) ([][]float32, error) {
	flat, err := wire.UnpackF32(t, nil, -1, want)
	if err != nil {
		return nil, err
	}
	channels, steps := int(t.Shape[0]), int(t.Shape[1])
	if channels == 0 || steps == 0 {
		return nil, fmt.Errorf("shape %v: no channels or no steps", t.Shape)
	}
	out := make([][]float32, channels)
	for c := range out {
		out[c] = flat[c*steps : (c+1)*steps : (c+1)*steps]
	}
	return out, nil
}

// packChannels encodes channels×steps values, checking the shape.
func packChannels(values [][]float32, channels, steps int) (*pb.Tensor, error) {
	if err := checkChannels(values, channels, steps); err != nil {
		return nil, err
	}
	out := make([]float32, 0, channels*steps)
	for _, v := range values {
		out = append(out, v...)
	}
	return wire.PackF32(out, int64(channels), int64(steps)), nil
}

// checkChannels reports whether values holds channels slices of steps
// values each.
func checkChannels(values [][]float32, channels, steps int) error {
	if len(values) != channels {
		return fmt.Errorf("%d channels in, %d out", channels, len(values))
	}
	for c, v := range values {
		if len(v) != steps {
			return fmt.Errorf("channel %d has %d steps, want %d", c, len(v), steps)
		}
	}
	return nil
}
