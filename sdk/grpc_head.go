package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/carryon/carryon/proto/carryon/v1"
	"github.com/carryon/carryon/sdk/internal/wire"
)

// headPlugin is the go-plugin side of a head plugin: it registers the Head
// service over impl. The matching client is in package host.
type headPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Head
}

func (p *headPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterHeadServer(s, &headServer{impl: p.impl})
	return nil
}

func (p *headPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the head client is in package sdk/host")
}

// headServer adapts a Head to the generated gRPC service.
type headServer struct {
	pb.UnimplementedHeadServer
	impl Head
}

func (s *headServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	_, training := s.impl.(Trainer)
	info.Training = info.Training || training
	return &pb.InfoResponse{Info: pluginInfoToPB(info)}, nil
}

func (s *headServer) Load(ctx context.Context, req *pb.LoadHeadRequest) (*pb.LoadHeadResponse, error) {
	if req.Id == "" {
		return nil, invalid("load head: empty id")
	}
	if req.Dir == "" {
		return nil, invalid("load head %q: empty directory", req.Id)
	}
	info, err := s.impl.Load(ctx, req.Id, req.Dir)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LoadHeadResponse{Head: headInfoToPB(info)}, nil
}

func (s *headServer) Unload(ctx context.Context, req *pb.UnloadHeadRequest) (*pb.UnloadHeadResponse, error) {
	if err := s.impl.Unload(ctx, req.Id); err != nil {
		return nil, toStatus(err)
	}
	return &pb.UnloadHeadResponse{}, nil
}

func (s *headServer) Release(ctx context.Context, req *pb.ReleaseRequest) (*pb.ReleaseResponse, error) {
	seqs := make([]SeqID, len(req.Seqs))
	for i, q := range req.Seqs {
		seqs[i] = SeqID(q)
	}
	if err := s.impl.Release(ctx, seqs); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReleaseResponse{}, nil
}

func (s *headServer) Forward(ctx context.Context, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	total := 0
	for _, g := range req.Groups {
		total += len(g.Seqs)
	}
	rows := make([]Row, 0, total)
	for gi, g := range req.Groups {
		n := len(g.Seqs)
		if len(g.Positions) != n {
			return nil, invalid("forward: group %d (head %q): %d sequences but %d positions", gi, g.Head, n, len(g.Positions))
		}
		hidden, err := wire.UnpackF32(g.Hidden, nil, int64(n), -1)
		if err != nil {
			return nil, invalid("forward: group %d (head %q): hidden states: %v", gi, g.Head, err)
		}
		width := 0
		if n > 0 {
			width = len(hidden) / n
		}
		for i := range n {
			p := g.Positions[i]
			if p < 0 || p > math.MaxInt32 {
				return nil, invalid("forward: group %d (head %q): position %d out of range", gi, g.Head, p)
			}
			rows = append(rows, Row{
				Head:   g.Head,
				Seq:    SeqID(g.Seqs[i]),
				Pos:    int(p),
				Hidden: hidden[i*width : (i+1)*width : (i+1)*width],
			})
		}
	}
	deltas, err := s.impl.Forward(ctx, rows)
	if err != nil {
		return nil, toStatus(err)
	}
	if len(deltas) != len(rows) {
		return nil, status.Errorf(codes.Internal, "forward: the plugin returned %d deltas for %d rows", len(deltas), len(rows))
	}
	resp := &pb.ForwardResponse{Deltas: make([]*pb.Tensor, len(req.Groups))}
	r := 0
	for gi, g := range req.Groups {
		n := len(g.Seqs)
		dim := 0
		if n > 0 {
			dim = len(deltas[r])
		}
		flat := make([]float32, 0, n*dim)
		for i := range n {
			d := deltas[r+i]
			if len(d) != dim {
				return nil, status.Errorf(codes.Internal, "forward: head %q returned deltas of %d and %d floats", g.Head, dim, len(d))
			}
			flat = append(flat, d...)
		}
		resp.Deltas[gi] = wire.PackF32(flat, int64(n), int64(dim))
		r += n
	}
	return resp, nil
}

func (s *headServer) Train(stream grpc.BidiStreamingServer[pb.TrainRequest, pb.TrainResponse]) error {
	trainer, ok := s.impl.(Trainer)
	if !ok {
		return status.Error(codes.Unimplemented, "train: this plugin does not train heads")
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return invalid("train: the first message must be a start message")
	}
	job := TrainJob{
		Head:     start.Head,
		Dir:      start.Dir,
		OutDir:   start.OutDir,
		BasePath: start.BasePath,
		Options:  start.Options,
	}
	info, err := trainer.Train(stream.Context(), job, &trainStream{stream: stream})
	if err != nil {
		return toStatus(err)
	}
	return stream.Send(&pb.TrainResponse{Message: "done", Result: headInfoToPB(info)})
}

// trainStream adapts the gRPC stream to TrainStream.
type trainStream struct {
	stream grpc.BidiStreamingServer[pb.TrainRequest, pb.TrainResponse]
}

func (t *trainStream) Recv() (TrainExample, error) {
	m, err := t.stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return TrainExample{}, io.EOF
		}
		return TrainExample{}, err
	}
	ex := m.GetExample()
	if ex == nil {
		return TrainExample{}, fmt.Errorf("train: %w: a second start message", ErrInvalid)
	}
	n := len(ex.Targets)
	flat, err := wire.UnpackF32(ex.Hidden, nil, int64(n), -1)
	if err != nil {
		return TrainExample{}, fmt.Errorf("train: %w: example hidden states: %v", ErrInvalid, err)
	}
	out := TrainExample{Hidden: make([][]float32, n), Targets: ex.Targets}
	if n > 0 {
		w := len(flat) / n
		for i := range out.Hidden {
			out.Hidden[i] = flat[i*w : (i+1)*w : (i+1)*w]
		}
	}
	return out, nil
}

func (t *trainStream) Send(p TrainProgress) error {
	return t.stream.Send(&pb.TrainResponse{Step: int64(p.Step), Loss: p.Loss, Message: p.Message})
}

func pluginInfoToPB(i PluginInfo) *pb.PluginInfo {
	return &pb.PluginInfo{Name: i.Name, Version: i.Version, Types: i.Types, Training: i.Training, Models: i.Models}
}

func headInfoToPB(h HeadInfo) *pb.HeadSpec {
	taps := make([]int32, len(h.Taps))
	for i, t := range h.Taps {
		taps[i] = int32(t)
	}
	return &pb.HeadSpec{
		Id:      h.ID,
		Version: h.Version,
		Type:    h.Type,
		Base: &pb.BaseModel{
			Arch:        h.Base.Arch,
			Dim:         int64(h.Base.Dim),
			Vocab:       int64(h.Base.Vocab),
			Layers:      int64(h.Base.Layers),
			Fingerprint: h.Base.Fingerprint,
		},
		Taps:       taps,
		Dim:        int64(h.Dim),
		Alpha:      h.Alpha,
		Parameters: h.Parameters,
	}
}
