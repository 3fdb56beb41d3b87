package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carryon/carryon/server/config"
)

// BenchmarkHeads64 runs 64 concurrent greedy streams of 32 tokens on the
// tiny model, over 64 distinct heads and with no heads, and reports the
// generated tokens per second and the per-step cost of the plugin calls.
// BenchmarkHeadSwap reports the latency of PUT /v1/heads/{id}.
func BenchmarkHeads64(b *testing.B) {
	s := headServer(b, func(c *config.Config) { c.MaxSequences = 64; c.PrefixCache = false })
	const clients, tokens = 64, 32
	for i := range clients {
		registerHead(b, s, fmt.Sprintf("b%d", i), writeHead(b, 1, uint64(100+i)))
	}
	for _, mode := range []string{"base", "heads"} {
		b.Run(mode, func(b *testing.B) {
			st0 := s.byName["tiny"].sched.Stats()
			t0 := time.Now()
			for range b.N {
				var wg sync.WaitGroup
				for i := range clients {
					model := "tiny"
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
			st := s.byName["tiny"].sched.Stats()
			b.ReportMetric(float64(b.N*clients*tokens)/el.Seconds(), "tok/s")
			if n := st.HeadSteps - st0.HeadSteps; n > 0 {
				b.ReportMetric(float64((st.HeadTime-st0.HeadTime).Microseconds())/float64(n), "µs/head-step")
			}
		})
	}
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
