package server

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/server/config"
)

// BenchmarkHeads64 runs 64 concurrent greedy streams of 32 tokens over 64
// distinct heads and with no heads, and reports the generated tokens per
// second and the per-step cost of the plugin calls. The base is the tiny
// test model with heads of width 16, or, when CARRYON_BENCH_BASE names a
// GGUF file (such as the 360M benchmark model), that model with heads of
// width 64, 2 blocks and F16 weights. BenchmarkHeadSwap reports the latency
// of PUT /v1/heads/{id}.
func BenchmarkHeads64(b *testing.B) {
	name, path := "tiny", filepath.Join(modelDir, "tiny.gguf")
	if p := os.Getenv("CARRYON_BENCH_BASE"); p != "" {
		name, path = "base", p
	}
	s := headServer(b, func(c *config.Config) {
		c.Models = []string{name + "=" + path}
		c.MaxSequences = 64
		c.PrefixCache = false
		c.Threads = 0
	})
	const clients, tokens = 64, 32
	for i := range clients {
		registerHead(b, s, fmt.Sprintf("b%d", i), writeBenchHead(b, path, name != "tiny", uint64(100+i)))
	}
	for _, mode := range []string{"base", "heads"} {
		b.Run(mode, func(b *testing.B) {
			st0 := s.byName[name].sched.Stats()
			t0 := time.Now()
			for range b.N {
				var wg sync.WaitGroup
				for i := range clients {
					model := name
					if mode == "heads" {
						model = fmt.Sprintf("b%d", i)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						body := fmt.Sprintf(`{"model":%q,"prompt":"bench %d","max_tokens":%d,"temperature":0,"stream":true,"ignore_eos":true}`, model, i, tokens)
						res, err := http.Post(s.url+"/v1/completions", "application/json", stringsReader(body))
						if err == nil {
							drain(res)
						}
					}()
				}
				wg.Wait()
			}
			el := time.Since(t0)
			st := s.byName[name].sched.Stats()
			b.ReportMetric(float64(b.N*clients*tokens)/el.Seconds(), "tok/s")
			if n := st.HeadSteps - st0.HeadSteps; n > 0 {
				b.ReportMetric(float64((st.HeadTime-st0.HeadTime).Microseconds())/float64(n), "µs/head-step")
			}
		})
	}
}

// writeBenchHead writes a random head for the base at path: the small test
// shape, or with real the shape of the benchmark (width 64, 2
// blocks, F16).
func writeBenchHead(t testing.TB, path string, real bool, seed uint64) string {
	t.Helper()
	if !real {
		return writeHead(t, 1, seed)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	base, err := carryonhead.BaseFromGGUF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := carryonhead.DefaultConfig(base)
	c.Width, c.Heads, c.FFN, c.Blocks, c.Alpha, c.Seed = 64, 4, 128, 2, 1, seed
	h, err := carryonhead.New(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("head-%d", seed))
	if err := h.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func BenchmarkHeadSwap(b *testing.B) {
	s := headServer(b, nil)
	dirs := []string{writeHead(b, 1, 201), writeHead(b, 1, 202)}
	registerHead(b, s, "sw", dirs[0])
	b.ResetTimer()
	for i := range b.N {
		if r := s.do(b, http.MethodPut, "/v1/heads/sw", fmt.Sprintf(`{"path":%q}`, dirs[(i+1)%2])); r.status != 200 {
			b.Fatalf("%d %s", r.status, r.body)
		}
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// drain reads and closes a response body.
func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
}
