package trafficlog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func openTest(t testing.TB, dir string) *Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func chatSample(id, model, completion string) *Sample {
	return &Sample{ID: id, Kind: KindChat, Model: model, Head: model, Version: "v1", Base: "tiny", Tenant: "acme",
		Messages: []Message{{Role: "user", Content: "question " + id}}, Completion: completion}
}

func rating(r float64) *float64 { return &r }
func text(s string) *string     { return &s }

func mustAppend(t testing.TB, l *Log, s *Sample) uint64 {
	t.Helper()
	seq, err := l.Append(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func mustFeedback(t testing.TB, l *Log, f *Feedback) uint64 {
	t.Helper()
	seq, err := l.AppendFeedback(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestAppendAcknowledgesInOrder(t *testing.T) {
	l := openTest(t, t.TempDir())
	if !l.Embedded() {
		t.Fatal("a log opened without a URL is not embedded")
	}
	var last uint64
	for i := range 5 {
		seq := mustAppend(t, l, chatSample(fmt.Sprintf("c%d", i), "alice", "answer"))
		if seq <= last {
			t.Fatalf("record %d got sequence %d after %d", i, seq, last)
		}
		last = seq
	}
	got, err := l.LastSeq(context.Background())
	if err != nil || got != last {
		t.Fatalf("LastSeq = %d, %v; want %d", got, err, last)
	}
}

func TestReadJoinsLatestFeedback(t *testing.T) {
	l := openTest(t, t.TempDir())
	ctx := context.Background()
	mustAppend(t, l, chatSample("a1", "alice", "plain"))
	mustAppend(t, l, chatSample("a2", "alice", "wrong"))
	mustAppend(t, l, chatSample("b1", "bob", "bob's"))
	mustAppend(t, l, chatSample("a3", "alice", "bad"))
	mustAppend(t, l, chatSample("a4", "alice", "rehabilitated"))
	mustAppend(t, l, chatSample("a5", "alice", "liked"))
	mustFeedback(t, l, &Feedback{ID: "a2", Model: "alice", Rating: rating(-1), Correction: text("right")})
	mustFeedback(t, l, &Feedback{ID: "a3", Model: "alice", Rating: rating(-1)})
	mustFeedback(t, l, &Feedback{ID: "a4", Model: "alice", Rating: rating(-0.5)})
	mustFeedback(t, l, &Feedback{ID: "a4", Model: "alice", Rating: rating(0.5)}) // the latest wins
	mustFeedback(t, l, &Feedback{ID: "a5", Model: "alice", Rating: rating(1)})
	mustFeedback(t, l, &Feedback{ID: "b1", Model: "bob", Rating: rating(-1)})
	last, _ := l.LastSeq(ctx)

	b, err := l.Read(ctx, "alice", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ex := range b.Examples {
		got = append(got, ex.ID+"="+ex.Target)
		if ex.Model != "alice" || ex.Tenant != "acme" || len(ex.Messages) != 1 || ex.Time.IsZero() || ex.Seq == 0 {
			t.Errorf("example %s lost fields: %+v", ex.ID, ex)
		}
	}
	want := "a1=plain a2=right a4=rehabilitated a5=liked"
	if strings.Join(got, " ") != want {
		t.Errorf("examples %q, want %q", strings.Join(got, " "), want)
	}
	if b.Excluded != 1 {
		t.Errorf("excluded %d, want 1 (a3)", b.Excluded)
	}
	if b.Next != last-1 { // bob's feedback is the stream's last record
		t.Errorf("next %d, want %d (alice's last record)", b.Next, last-1)
	}
	if b.Examples[3].Feedback == nil || *b.Examples[3].Feedback.Rating != 1 {
		t.Errorf("a5's feedback not joined: %+v", b.Examples[3].Feedback)
	}

	// Nothing new: the next read is empty and keeps its place.
	b2, err := l.Read(ctx, "alice", ReadOptions{After: b.Next})
	if err != nil || len(b2.Examples) != 0 || b2.Next != b.Next {
		t.Fatalf("second read: %+v, %v", b2, err)
	}
	bob, err := l.Read(ctx, "bob", ReadOptions{})
	if err != nil || len(bob.Examples) != 0 || bob.Excluded != 1 {
		t.Fatalf("bob: %+v, %v", bob, err)
	}
}

func TestReadLimitAndPending(t *testing.T) {
	l := openTest(t, t.TempDir())
	ctx := context.Background()
	var seqs []uint64
	for i := range 10 {
		seqs = append(seqs, mustAppend(t, l, chatSample(fmt.Sprintf("s%d", i), "qwen2.5:0.5b/x", fmt.Sprint(i))))
	}
	mustAppend(t, l, chatSample("other", "qwen2", "no")) // a prefix of the name, another model
	// Feedback about an early sample arrives after the later ones.
	mustFeedback(t, l, &Feedback{ID: "s1", Model: "qwen2.5:0.5b/x", Correction: text("one")})
	n, err := l.Pending(ctx, "qwen2.5:0.5b/x", 0)
	if err != nil || n != 10 {
		t.Fatalf("Pending = %d, %v; want 10", n, err)
	}
	if n, _ := l.Pending(ctx, "qwen2.5:0.5b/x", seqs[6]); n != 3 {
		t.Fatalf("Pending after the 7th = %d, want 3", n)
	}
	b, err := l.Read(ctx, "qwen2.5:0.5b/x", ReadOptions{Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Examples) != 4 || b.Next != seqs[3] {
		t.Fatalf("limited read: %d examples, next %d; want 4, %d", len(b.Examples), b.Next, seqs[3])
	}
	if b.Examples[1].Target != "one" {
		t.Errorf("feedback after the limit was not joined: target %q", b.Examples[1].Target)
	}
	rest, err := l.Read(ctx, "qwen2.5:0.5b/x", ReadOptions{After: b.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.Examples) != 6 || rest.Examples[0].ID != "s4" || rest.Examples[5].ID != "s9" {
		t.Fatalf("the rest: %+v", rest.Examples)
	}
}

func TestReadBefore(t *testing.T) {
	l := openTest(t, t.TempDir())
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var seqs []uint64
	for i := range 4 {
		s := chatSample(fmt.Sprintf("t%d", i), "m", "x")
		s.Time = t0.Add(time.Duration(i) * time.Minute)
		seqs = append(seqs, mustAppend(t, l, s))
	}
	mustFeedback(t, l, &Feedback{ID: "t1", Model: "m", Correction: text("late")})
	b, err := l.Read(ctx, "m", ReadOptions{Before: t0.Add(90 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Examples) != 2 || b.Next != seqs[1] || b.Examples[1].Target != "late" {
		t.Fatalf("read before 12:01:30: %+v", b)
	}
	rest, err := l.Read(ctx, "m", ReadOptions{After: b.Next})
	if err != nil || len(rest.Examples) != 2 || rest.Examples[0].ID != "t2" {
		t.Fatalf("the rest: %+v, %v", rest, err)
	}
}

func TestSampleLookup(t *testing.T) {
	l := openTest(t, t.TempDir())
	ctx := context.Background()
	seq := mustAppend(t, l, chatSample("chatcmpl-42", "my.head", "x"))
	s, got, err := l.Sample(ctx, "chatcmpl-42")
	if err != nil || got != seq || s.Model != "my.head" || s.Completion != "x" {
		t.Fatalf("Sample = %+v, %d, %v", s, got, err)
	}
	for _, id := range []string{"chatcmpl-43", "", "a.b", "*", ">", "has space"} {
		if _, _, err := l.Sample(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Sample(%q) error %v, want ErrNotFound", id, err)
		}
	}
}

func TestDuplicateIDIsStoredOnce(t *testing.T) {
	l := openTest(t, t.TempDir())
	a := mustAppend(t, l, chatSample("dup", "m", "first"))
	b := mustAppend(t, l, chatSample("dup", "m", "second"))
	if a != b {
		t.Fatalf("a repeated id got sequences %d and %d", a, b)
	}
}

func TestInvalidRecords(t *testing.T) {
	l := openTest(t, t.TempDir())
	ctx := context.Background()
	for name, s := range map[string]*Sample{
		"bad id":   {ID: "a.b", Kind: KindChat, Model: "m"},
		"no model": {ID: "x", Kind: KindChat},
		"kind":     {ID: "x", Kind: "image", Model: "m"},
	} {
		if _, err := l.Append(ctx, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for name, f := range map[string]*Feedback{
		"empty":      {ID: "x", Model: "m"},
		"range":      {ID: "x", Model: "m", Rating: rating(2)},
		"no model":   {ID: "x", Rating: rating(1)},
		"id":         {ID: "", Model: "m", Rating: rating(1)},
		"wildcard":   {ID: "*", Model: "m", Rating: rating(1)},
		"below":      {ID: "x", Model: "m", Rating: rating(-1.5)},
		"not number": {ID: "x", Model: "m", Rating: rating(nan())},
	} {
		if _, err := l.AppendFeedback(ctx, f); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Open(ctx, Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open without URL or directory: %v", err)
	}
}

func nan() float64 { var z float64; return z / z }

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l, err := Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		mustAppend(t, l, chatSample(fmt.Sprintf("r%d", i), "alice", fmt.Sprint(i)))
	}
	mustFeedback(t, l, &Feedback{ID: "r7", Model: "alice", Correction: text("seven")})
	last, _ := l.LastSeq(ctx)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append(ctx, chatSample("late", "alice", "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}

	l2 := openTest(t, dir)
	if got, _ := l2.LastSeq(ctx); got != last {
		t.Fatalf("reopened LastSeq %d, want %d", got, last)
	}
	b, err := l2.Read(ctx, "alice", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Examples) != n || b.Examples[7].Target != "seven" || b.Next != last {
		t.Fatalf("reopened: %d examples, r7 target %q, next %d", len(b.Examples), b.Examples[7].Target, b.Next)
	}
	// The sequence goes on from where it was.
	if seq := mustAppend(t, l2, chatSample("after", "alice", "")); seq != last+1 {
		t.Fatalf("first record after reopening got %d, want %d", seq, last+1)
	}
}

func TestToken(t *testing.T) {
	for in, want := range map[string]string{
		"alice":          "alice",
		"qwen2.5":        "qwen2%2E5",
		"a:b/c d":        "a%3Ab%2Fc%20d",
		"100%":           "100%25",
		"under_score-ok": "under_score-ok",
	} {
		if got := Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
	if Token("a.b") == Token("a%2Eb") {
		t.Error("distinct names share a token")
	}
}

// BenchmarkAppend measures one acknowledged record at a time: the
// latency a logged request adds before its response goes out.
func BenchmarkAppend(b *testing.B) {
	l := openTest(b, b.TempDir())
	s := chatSample("", "alice", strings.Repeat("word ", 60))
	s.Messages = []Message{{Role: "system", Content: "You are helpful."}, {Role: "user", Content: strings.Repeat("ask ", 50)}}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		s.ID = fmt.Sprintf("bench-%d", i)
		if _, err := l.Append(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel measures acknowledged records from concurrent
// requests.
func BenchmarkAppendParallel(b *testing.B) {
	l := openTest(b, b.TempDir())
	ctx := context.Background()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		s := chatSample("", "alice", strings.Repeat("word ", 60))
		for pb.Next() {
			s.ID = fmt.Sprintf("bench-%d", next.Add(1))
			if _, err := l.Append(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendSyncAlways measures one acknowledged record when every
// record is fsynced before its acknowledgement.
func BenchmarkAppendSyncAlways(b *testing.B) {
	l, err := Open(context.Background(), Options{Dir: b.TempDir(), SyncAlways: true})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	s := chatSample("", "alice", strings.Repeat("word ", 60))
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		s.ID = fmt.Sprintf("bench-%d", i)
		if _, err := l.Append(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// startExternal runs a NATS server with JetStream on a loopback port, as
// an operator's server would be, and returns its URL.
func startExternal(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the external NATS server did not start")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

func TestExternalServerSharedByTwoLogs(t *testing.T) {
	url := startExternal(t)
	ctx := context.Background()
	a, err := Open(ctx, Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Embedded() {
		t.Fatal("a log opened with a URL runs its own server")
	}
	b, err := Open(ctx, Options{URL: url}) // a second replica finds the stream
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustAppend(t, a, chatSample("x1", "alice", "from a"))
	mustAppend(t, b, chatSample("x2", "alice", "from b"))
	mustFeedback(t, b, &Feedback{ID: "x1", Model: "alice", Correction: text("fixed")})
	got, err := a.Read(ctx, "alice", ReadOptions{})
	if err != nil || len(got.Examples) != 2 || got.Examples[0].Target != "fixed" || got.Examples[1].Target != "from b" {
		t.Fatalf("read through the first replica: %+v, %v", got, err)
	}

	// A stream of that name that does not take the log's subjects is
	// refused rather than changed.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FOREIGN", Subjects: []string{"foreign.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{URL: url, Stream: "FOREIGN"}); err == nil || !strings.Contains(err.Error(), "do not take") {
		t.Fatalf("a foreign stream: %v", err)
	}
	if _, err := Open(ctx, Options{URL: "nats://127.0.0.1:1"}); err == nil {
		t.Fatal("a URL where nothing listens opened")
	}
}

// TestExternalServerDown fails appends at once while the server is gone,
// and appends again once it is back.
func TestExternalServerDown(t *testing.T) {
	dir := t.TempDir()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	port := ns.Addr().(*net.TCPAddr).Port
	ctx := context.Background()
	l, err := Open(ctx, Options{URL: ns.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustAppend(t, l, chatSample("up1", "m", "x"))
	ns.Shutdown()
	ns.WaitForShutdown()
	waitUntil(t, func() bool { return !l.nc.IsConnected() })
	t0 := time.Now()
	if _, err := l.Append(ctx, chatSample("down", "m", "x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append while the server is down: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("the failed append took %v", d)
	}
	opts.Port = port
	ns2, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns2.Start()
	defer func() {
		ns2.Shutdown()
		ns2.WaitForShutdown()
	}()
	waitUntil(t, l.nc.IsConnected)
	mustAppend(t, l, chatSample("up2", "m", "x"))
	b, err := l.Read(ctx, "m", ReadOptions{})
	if err != nil || len(b.Examples) != 2 {
		t.Fatalf("after the server came back: %+v, %v", b, err)
	}
}

func waitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
