package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/host"
	"github.com/carryon/carryon/sdk/sdktest"
)

// offsetHead returns, for each row, its input plus an offset that depends on
// the head, and records what it was called with.
type offsetHead struct {
	mu       sync.Mutex
	offsets  map[string]float32
	released []sdk.SeqID
	seen     []sdk.Row
}

func (h *offsetHead) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "offset", Version: "1", Types: []string{"offset"}}, nil
}

func (h *offsetHead) Load(_ context.Context, id, dir string) (sdk.HeadInfo, error) {
	if dir == "bad" {
		return sdk.HeadInfo{}, fmt.Errorf("load %s: %w: no such head", id, sdk.ErrInvalid)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offsets[id] = float32(len(h.offsets) + 1)
	return sdk.HeadInfo{ID: id, Version: "v-" + id, Type: "offset", Taps: []int{sdk.FinalLayer, 3},
		Dim: 2, Alpha: 0.5, Parameters: 7, Base: sdk.BaseModel{Arch: "llama", Dim: 2, Vocab: 10, Layers: 4, Fingerprint: "fp"}}, nil
}

func (h *offsetHead) Unload(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.offsets[id]; !ok {
		return fmt.Errorf("%w %q", sdk.ErrUnknownHead, id)
	}
	delete(h.offsets, id)
	return nil
}

func (h *offsetHead) Forward(ctx context.Context, rows []sdk.Row) ([][]float32, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([][]float32, len(rows))
	for i, r := range rows {
		off, ok := h.offsets[r.Head]
		if !ok {
			return nil, fmt.Errorf("%w %q", sdk.ErrUnknownHead, r.Head)
		}
		if r.Head == "slow" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		out[i] = []float32{r.Hidden[0] + off, float32(r.Pos)}
		r.Hidden = slices.Clone(r.Hidden)
		h.seen = append(h.seen, r)
	}
	return out, nil
}

func (h *offsetHead) Release(_ context.Context, seqs []sdk.SeqID) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = append(h.released, seqs...)
	return nil
}

// trainingHead adds Train: it averages the examples' first hidden values.
type trainingHead struct{ offsetHead }

func (h *trainingHead) Train(ctx context.Context, job sdk.TrainJob, s sdk.TrainStream) (sdk.HeadInfo, error) {
	if job.Options["lr"] != "0.1" {
		return sdk.HeadInfo{}, fmt.Errorf("%w: lr %q", sdk.ErrInvalid, job.Options["lr"])
	}
	step := 0
	for {
		ex, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sdk.HeadInfo{}, err
		}
		step++
		if err := s.Send(sdk.TrainProgress{Step: step, Loss: float64(ex.Hidden[0][0]), Message: fmt.Sprint(ex.Targets)}); err != nil {
			return sdk.HeadInfo{}, err
		}
	}
	return sdk.HeadInfo{ID: job.Head, Version: fmt.Sprintf("trained-%d", step), Dim: 2}, nil
}

func newOffsetHead() *offsetHead { return &offsetHead{offsets: map[string]float32{}} }

func TestHeadOverGRPC(t *testing.T) {
	impl := newOffsetHead()
	h := sdktest.ServeHead(t, impl)
	ctx := context.Background()
	info, err := h.Info(ctx)
	if err != nil || info.Name != "offset" || info.Training {
		t.Fatalf("Info %+v %v", info, err)
	}
	hi, err := h.Load(ctx, "a", "dir")
	if err != nil {
		t.Fatal(err)
	}
	want := sdk.HeadInfo{ID: "a", Version: "v-a", Type: "offset", Taps: []int{-1, 3}, Dim: 2, Alpha: 0.5, Parameters: 7,
		Base: sdk.BaseModel{Arch: "llama", Dim: 2, Vocab: 10, Layers: 4, Fingerprint: "fp"}}
	if fmt.Sprint(hi) != fmt.Sprint(want) || hi.InputDim() != 4 {
		t.Fatalf("HeadInfo %+v", hi)
	}
	if _, err := h.Load(ctx, "b", "dir"); err != nil {
		t.Fatal(err)
	}
	// Rows of two heads interleaved come back in row order.
	rows := []sdk.Row{
		{Head: "a", Seq: 1, Pos: 0, Hidden: []float32{10, 0, 0, 0}},
		{Head: "b", Seq: 2, Pos: 5, Hidden: []float32{20, 0, 0, 0}},
		{Head: "a", Seq: 1, Pos: 1, Hidden: []float32{30, 0, 0, 0}},
		{Head: "b", Seq: 3, Pos: 9, Hidden: []float32{40, 1, 2, 3}},
	}
	out, err := h.Forward(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(out); got != "[[11 0] [22 5] [31 1] [42 9]]" {
		t.Fatalf("Forward = %s", got)
	}
	if last := impl.seen[len(impl.seen)-1]; last.Seq != 3 || fmt.Sprint(last.Hidden) != "[40 1 2 3]" {
		t.Fatalf("the plugin saw %+v", last)
	}
	if out, err := h.Forward(ctx, nil); err != nil || len(out) != 0 {
		t.Fatalf("empty Forward: %v %v", out, err)
	}
	if err := h.Release(ctx, []sdk.SeqID{1, 3}); err != nil || fmt.Sprint(impl.released) != "[1 3]" {
		t.Fatalf("Release: %v, plugin saw %v", err, impl.released)
	}

	// Errors keep their kind across the wire, and their text.
	_, err = h.Load(ctx, "x", "bad")
	if !errors.Is(err, sdk.ErrInvalid) || !errors.Is(err, err) {
		t.Fatalf("Load bad: %v", err)
	}
	var he *host.Error
	if !errors.As(err, &he) || he.Op != "load x" || he.Message != "load x: invalid request: no such head" {
		t.Fatalf("Load bad: %#v", err)
	}
	if err := h.Unload(ctx, "zzz"); !errors.Is(err, sdk.ErrUnknownHead) {
		t.Fatalf("Unload unknown: %v", err)
	}
	if _, err := h.Forward(ctx, []sdk.Row{{Head: "a", Hidden: []float32{1}}, {Head: "a", Hidden: []float32{1, 2}}}); !errors.Is(err, sdk.ErrInvalid) {
		t.Fatalf("ragged rows: %v", err)
	}
	if _, err := h.Load(ctx, "", "dir"); !errors.Is(err, sdk.ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}

	// A cancelled call is a context error, not a plugin failure.
	if _, err := h.Load(ctx, "slow", "dir"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := h.Forward(cctx, []sdk.Row{{Head: "slow", Hidden: []float32{1}}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if err := h.Plugin().Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// No training here.
	run, err := h.Train(ctx, sdk.TrainJob{Head: "a"})
	if err == nil {
		_, err = run.Recv()
	}
	if !errors.Is(err, sdk.ErrUnsupported) {
		t.Fatalf("Train: %v", err)
	}
}

func TestTrainOverGRPC(t *testing.T) {
	h := sdktest.ServeHead(t, &trainingHead{offsetHead: *newOffsetHead()})
	ctx := context.Background()
	info, err := h.Info(ctx)
	if err != nil || !info.Training {
		t.Fatalf("Info %+v %v", info, err)
	}
	run, err := h.Train(ctx, sdk.TrainJob{Head: "a", OutDir: "out", Options: map[string]string{"lr": "0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ex := sdk.TrainExample{Hidden: [][]float32{{float32(i), 0}, {1, 1}}, Targets: []int32{int32(i), 9}}
		if err := run.Send(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := run.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var updates []host.TrainUpdate
	for {
		u, err := run.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		updates = append(updates, u)
	}
	if len(updates) != 4 || updates[2].Step != 3 || updates[2].Loss != 2 || updates[2].Message != "[2 9]" {
		t.Fatalf("updates %+v", updates)
	}
	if r := updates[3].Result; r == nil || r.Version != "trained-3" || r.ID != "a" {
		t.Fatalf("result %+v", updates[3])
	}

	// A run the plugin rejects reports why.
	run, err = h.Train(ctx, sdk.TrainJob{Head: "a"})
	if err == nil {
		_, err = run.Recv()
	}
	if !errors.Is(err, sdk.ErrInvalid) {
		t.Fatalf("rejected run: %v", err)
	}
}

// meanForecaster predicts each channel's mean.
type meanForecaster struct{}

func (meanForecaster) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "mean", Types: []string{"mean"}}, nil
}

func (meanForecaster) Load(_ context.Context, id, dir string) (sdk.ForecasterInfo, error) {
	return sdk.ForecasterInfo{ID: id, Version: "1", Type: "mean", Context: 16, Horizon: 4}, nil
}

func (meanForecaster) Unload(context.Context, string) error { return nil }

func (meanForecaster) Forecast(_ context.Context, req sdk.ForecastRequest) (sdk.Forecast, error) {
	if req.Model != "m" {
		return sdk.Forecast{}, fmt.Errorf("%w %q", sdk.ErrUnknownHead, req.Model)
	}
	out := sdk.Forecast{Values: make([][]float32, len(req.Series))}
	for c, s := range req.Series {
		var sum float32
		for _, v := range s {
			sum += v
		}
		out.Values[c] = make([]float32, req.Horizon)
		for i := range out.Values[c] {
			out.Values[c][i] = sum / float32(len(s))
		}
	}
	return out, nil
}

func TestForecasterOverGRPC(t *testing.T) {
	f := sdktest.ServeForecaster(t, meanForecaster{})
	ctx := context.Background()
	info, err := f.Load(ctx, "m", "dir")
	if err != nil || info.Horizon != 4 || info.Context != 16 {
		t.Fatalf("Load %+v %v", info, err)
	}
	fc, err := f.Forecast(ctx, sdk.ForecastRequest{Model: "m", Series: [][]float32{{1, 2, 3}, {4, 4, 7}}, Horizon: 2})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fc.Values) != "[[2 2] [5 5]]" {
		t.Fatalf("Forecast %v", fc.Values)
	}
	if _, err := f.Forecast(ctx, sdk.ForecastRequest{Model: "x", Series: [][]float32{{1}}, Horizon: 2}); !errors.Is(err, sdk.ErrUnknownHead) {
		t.Fatalf("unknown model: %v", err)
	}
	if _, err := f.Forecast(ctx, sdk.ForecastRequest{Model: "m", Series: [][]float32{{1}}, Horizon: 0}); !errors.Is(err, sdk.ErrInvalid) {
		t.Fatalf("zero horizon: %v", err)
	}
	if _, err := f.Plugin().Head(ctx); !errors.Is(err, host.ErrKind) {
		t.Fatalf("Head of a forecaster plugin: %v", err)
	}
}

// TestLargeForward sends more than gRPC's default 4 MiB message limit each
// way: 1024 rows of 2048 floats (8 MiB) in, as much out.
func TestLargeForward(t *testing.T) {
	h := sdktest.ServeHead(t, echoWide{})
	rows := make([]sdk.Row, 1024)
	for i := range rows {
		rows[i] = sdk.Row{Head: "w", Seq: sdk.SeqID(i), Hidden: make([]float32, 2048)}
		rows[i].Hidden[i] = float32(i)
	}
	out, err := h.Forward(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1024 || len(out[1023]) != 2048 || out[1023][1023] != 1023 {
		t.Fatalf("got %d rows", len(out))
	}
}

// echoWide returns its rows' inputs.
type echoWide struct{}

func (echoWide) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "echo"}, nil
}
func (echoWide) Load(context.Context, string, string) (sdk.HeadInfo, error) {
	return sdk.HeadInfo{}, nil
}
func (echoWide) Unload(context.Context, string) error       { return nil }
func (echoWide) Release(context.Context, []sdk.SeqID) error { return nil }
func (echoWide) Forward(_ context.Context, rows []sdk.Row) ([][]float32, error) {
	out := make([][]float32, len(rows))
	for i, r := range rows {
		out[i] = r.Hidden
	}
	return out, nil
}

// BenchmarkForwardTransport is the cost of the plugin protocol alone: 64
// rows of 960 floats to a head served in this process that returns its
// input, over gRPC on a local socket, and back.
func BenchmarkForwardTransport(b *testing.B) {
	h := sdktest.ServeHead(b, echoWide{})
	rows := make([]sdk.Row, 64)
	for i := range rows {
		rows[i] = sdk.Row{Head: "w", Seq: sdk.SeqID(i), Hidden: make([]float32, 960)}
	}
	ctx := context.Background()
	b.SetBytes(2 * 64 * 960 * 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Forward(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/call")
}
