package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/carryon/carryon/proto/carryon/v1"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/internal/wire"
)

// headRPC is the generated client of the Head service.
type headRPC = pb.HeadClient

// headPlugin is the go-plugin client side of a head plugin.
type headPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (headPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("host: the head server is in package sdk")
}

func (headPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewHeadClient(c), nil
}

// HeadClient calls a head plugin. It implements sdk.Head, so code that runs
// heads does not care whether they are in this process or in a plugin. Its
// methods are safe for concurrent use. Errors are *Error values (see
// package doc for their kinds).
type HeadClient struct {
	p   *Plugin
	rpc headRPC
}

var _ sdk.Head = (*HeadClient)(nil)

// Plugin returns the plugin the client calls.
func (c *HeadClient) Plugin() *Plugin { return c.p }

// Info asks the plugin to describe itself.
func (c *HeadClient) Info(ctx context.Context) (sdk.PluginInfo, error) {
	if c.p.Exited() {
		return sdk.PluginInfo{}, c.p.exitedError("info")
	}
	r, err := c.rpc.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return sdk.PluginInfo{}, c.p.callError("info", err)
	}
	return pluginInfoFromPB(r.Info), nil
}

// Load asks the plugin to load the head directory dir under id. dir must be
// a path the plugin process can read.
func (c *HeadClient) Load(ctx context.Context, id, dir string) (sdk.HeadInfo, error) {
	if c.p.Exited() {
		return sdk.HeadInfo{}, c.p.exitedError("load " + id)
	}
	r, err := c.rpc.Load(ctx, &pb.LoadHeadRequest{Id: id, Dir: dir})
	if err != nil {
		return sdk.HeadInfo{}, c.p.callError("load "+id, err)
	}
	return headInfoFromPB(r.Head), nil
}

// Unload asks the plugin to drop a head.
func (c *HeadClient) Unload(ctx context.Context, id string) error {
	if c.p.Exited() {
		return c.p.exitedError("unload " + id)
	}
	if _, err := c.rpc.Unload(ctx, &pb.UnloadHeadRequest{Id: id}); err != nil {
		return c.p.callError("unload "+id, err)
	}
	return nil
}

// Release asks the plugin to drop sequences' state.
func (c *HeadClient) Release(ctx context.Context, seqs []sdk.SeqID) error {
	if c.p.Exited() {
		return c.p.exitedError("release")
	}
	req := &pb.ReleaseRequest{Seqs: make([]uint64, len(seqs))}
	for i, s := range seqs {
		req.Seqs[i] = uint64(s)
	}
	if _, err := c.rpc.Release(ctx, req); err != nil {
		return c.p.callError("release", err)
	}
	return nil
}

// Forward sends rows to the plugin in one call, grouped by head (rows keep
// their order within a head), and returns one delta per row, in row order.
// The rows of one head must have Hidden slices of equal length.
func (c *HeadClient) Forward(ctx context.Context, rows []sdk.Row) ([][]float32, error) {
	if c.p.Exited() {
		return nil, c.p.exitedError("forward")
	}
	if len(rows) == 0 {
		return [][]float32{}, nil
	}
	type group struct {
		head string
		rows []int
	}
	var groups []group
	index := make(map[string]int)
	for i, r := range rows {
		g, ok := index[r.Head]
		if !ok {
			g = len(groups)
			index[r.Head] = g
			groups = append(groups, group{head: r.Head})
		}
		groups[g].rows = append(groups[g].rows, i)
	}
	req := &pb.ForwardRequest{Groups: make([]*pb.HeadRows, len(groups))}
	for gi, g := range groups {
		n := len(g.rows)
		width := len(rows[g.rows[0]].Hidden)
		hr := &pb.HeadRows{Head: g.head, Seqs: make([]uint64, n), Positions: make([]int64, n)}
		for k, ri := range g.rows {
			r := rows[ri]
			if len(r.Hidden) != width {
				return nil, fmt.Errorf("plugin %s: forward: head %q: %w: rows of %d and %d floats", c.p.name, g.head, sdk.ErrInvalid, width, len(r.Hidden))
			}
			hr.Seqs[k] = uint64(r.Seq)
			hr.Positions[k] = int64(r.Pos)
		}
		hr.Hidden = wire.PackF32Rows(n, width, func(k int) []float32 { return rows[g.rows[k]].Hidden })
		req.Groups[gi] = hr
	}
	resp, err := c.rpc.Forward(ctx, req)
	if err != nil {
		return nil, c.p.callError("forward", err)
	}
	if len(resp.Deltas) != len(groups) {
		return nil, fmt.Errorf("plugin %s: forward: %d delta groups for %d head groups", c.p.name, len(resp.Deltas), len(groups))
	}
	out := make([][]float32, len(rows))
	for gi, g := range groups {
		n := len(g.rows)
		flat, err := wire.UnpackF32(resp.Deltas[gi], nil, int64(n), -1)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: forward: deltas of head %q: %w", c.p.name, g.head, err)
		}
		dim := len(flat) / n
		for k, ri := range g.rows {
			out[ri] = flat[k*dim : (k+1)*dim : (k+1)*dim]
		}
	}
	return out, nil
}

// Train starts a training run in the plugin. Send examples, call CloseSend,
// and Recv progress until the result. A plugin without training fails with
// an error wrapping sdk.ErrUnsupported, at the latest on the first Recv.
func (c *HeadClient) Train(ctx context.Context, job sdk.TrainJob) (*TrainRun, error) {
	if c.p.Exited() {
		return nil, c.p.exitedError("train")
	}
	s, err := c.rpc.Train(ctx)
	if err != nil {
		return nil, c.p.callError("train", err)
	}
	start := &pb.TrainStart{Head: job.Head, Dir: job.Dir, OutDir: job.OutDir, BasePath: job.BasePath, Options: job.Options}
	if err := s.Send(&pb.TrainRequest{Msg: &pb.TrainRequest_Start{Start: start}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, c.p.callError("train", err)
	}
	return &TrainRun{p: c.p, s: s}, nil
}

// TrainRun is a training run in a plugin. Send and CloseSend may be called
// from one goroutine while Recv is called from another.
type TrainRun struct {
	p *Plugin
	s grpc.BidiStreamingClient[pb.TrainRequest, pb.TrainResponse]
}

// TrainUpdate is a message from a training run: progress, and on the last
// message the new version.
type TrainUpdate struct {
	sdk.TrainProgress
	// Result is set on the last message.
	Result *sdk.HeadInfo
}

// Send sends one example.
func (r *TrainRun) Send(ex sdk.TrainExample) error {
	n := len(ex.Hidden)
	if n != len(ex.Targets) {
		return fmt.Errorf("train: %w: %d hidden rows, %d targets", sdk.ErrInvalid, n, len(ex.Targets))
	}
	width := 0
	if n > 0 {
		width = len(ex.Hidden[0])
	}
	for _, h := range ex.Hidden {
		if len(h) != width {
			return fmt.Errorf("train: %w: hidden rows of %d and %d floats", sdk.ErrInvalid, width, len(h))
		}
	}
	msg := &pb.TrainExample{Hidden: wire.PackF32Rows(n, width, func(i int) []float32 { return ex.Hidden[i] }), Targets: ex.Targets}
	if err := r.s.Send(&pb.TrainRequest{Msg: &pb.TrainRequest_Example{Example: msg}}); err != nil {
		if errors.Is(err, io.EOF) {
			// The plugin ended the run; Recv returns why.
			return fmt.Errorf("train: the run has ended: %w", io.EOF)
		}
		return r.p.callError("train", err)
	}
	return nil
}

// CloseSend tells the plugin that every example has been sent.
func (r *TrainRun) CloseSend() error { return r.s.CloseSend() }

// Recv returns the next update, or io.EOF after the last one.
func (r *TrainRun) Recv() (TrainUpdate, error) {
	m, err := r.s.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return TrainUpdate{}, io.EOF
		}
		return TrainUpdate{}, r.p.callError("train", err)
	}
	u := TrainUpdate{TrainProgress: sdk.TrainProgress{Step: int(m.Step), Loss: m.Loss, Message: m.Message}}
	if m.Result != nil {
		info := headInfoFromPB(m.Result)
		u.Result = &info
	}
	return u, nil
}

func pluginInfoFromPB(i *pb.PluginInfo) sdk.PluginInfo {
	if i == nil {
		return sdk.PluginInfo{}
	}
	return sdk.PluginInfo{Name: i.Name, Version: i.Version, Types: i.Types, Training: i.Training, Models: i.Models}
}

func headInfoFromPB(h *pb.HeadSpec) sdk.HeadInfo {
	if h == nil {
		return sdk.HeadInfo{}
	}
	taps := make([]int, len(h.Taps))
	for i, t := range h.Taps {
		taps[i] = int(t)
	}
	info := sdk.HeadInfo{
		ID:         h.Id,
		Version:    h.Version,
		Type:       h.Type,
		Taps:       taps,
		Dim:        int(h.Dim),
		Alpha:      h.Alpha,
		Parameters: h.Parameters,
	}
	if b := h.Base; b != nil {
		info.Base = sdk.BaseModel{Arch: b.Arch, Dim: int(b.Dim), Vocab: int(b.Vocab), Layers: int(b.Layers), Fingerprint: b.Fingerprint}
	}
	return info
}
