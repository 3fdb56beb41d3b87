package sdk

import (
	"context"
	"errors"

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
	flat, err := wire.UnpackF32(req.Series, nil, -1, -1)
	if err != nil {
		return nil, invalid("forecast with %q: series: %v", req.Model, err)
	}
	channels, steps := int(req.Series.Shape[0]), int(req.Series.Shape[1])
	series := make([][]float32, channels)
	for c := range series {
		series[c] = flat[c*steps : (c+1)*steps : (c+1)*steps]
	}
	fc, err := s.impl.Forecast(ctx, ForecastRequest{Model: req.Model, Series: series, Horizon: int(req.Horizon)})
	if err != nil {
		return nil, toStatus(err)
	}
	if len(fc.Values) != channels {
		return nil, status.Errorf(codes.Internal, "forecast with %q: %d channels in, %d out", req.Model, channels, len(fc.Values))
	}
	out := make([]float32, 0, channels*int(req.Horizon))
	for c, v := range fc.Values {
		if len(v) != int(req.Horizon) {
			return nil, status.Errorf(codes.Internal, "forecast with %q: channel %d has %d steps, want %d", req.Model, c, len(v), req.Horizon)
		}
		out = append(out, v...)
	}
	return &pb.ForecastResponse{Forecast: wire.PackF32(out, int64(channels), req.Horizon)}, nil
}
