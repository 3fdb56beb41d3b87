package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

// benchServeOptions are the flags of `carryon bench-serve`.
type benchServeOptions struct {
	url       string
	model     string
	clients   []int
	requests  int
	maxTokens int
	prompt    string
	json      bool
	timeout   time.Duration
}

func newBenchServeCommand() *cobra.Command {
	o := benchServeOptions{}
	cmd := &cobra.Command{
		Use:   "bench-serve --url URL --model NAME [--clients 1,4,16] [--requests R] [--max-tokens N]",
		Short: "Load-test a running server with concurrent streaming clients",
		Long: `Load-test a running carryon server (or any OpenAI-compatible server) with N
concurrent clients for each N of --clients. Each client sends streaming
/v1/completions requests one after another (temperature 0, ignore_eos, so every
request generates exactly --max-tokens tokens) until --requests requests of the
level are done. Prompts differ per request (a number in front), so the prefix
cache cannot answer them.

For each level it reports completed requests per second, generated tokens per
second over all clients, and the median and 99th percentile time to first token
(from sending the request to the first streamed text).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBenchServe(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the server")
	f.StringVar(&o.model, "model", "", "model name (default: the first of /v1/models)")
	f.IntSliceVar(&o.clients, "clients", []int{1, 4, 16}, "concurrent clients, one level each")
	f.IntVar(&o.requests, "requests", 0, "requests per level (default: 4 per client, at least 8)")
	f.IntVar(&o.maxTokens, "max-tokens", 64, "tokens generated per request")
	f.StringVar(&o.prompt, "prompt", "Once upon a time, in a small village by the sea, there lived", "prompt text (a request number is put in front)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per level instead of a table")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "timeout of one request")
	return cmd
}

// benchLevel is the result of one level of concurrency.
type benchLevel struct {
	Clients         int     `json:"clients"`
	Requests        int     `json:"requests"`
	Failed          int     `json:"failed"`
	Seconds         float64 `json:"seconds"`
	RequestsPerSec  float64 `json:"requests_per_s"`
	TokensPerSec    float64 `json:"generated_tokens_per_s"`
	GeneratedTokens int     `json:"generated_tokens"`
	TTFTp50ms       float64 `json:"ttft_p50_ms"`
	TTFTp99ms       float64 `json:"ttft_p99_ms"`
	// DecodeTokensPerSec is the mean over requests of each request's own
	// generation rate after its first token.
	DecodeTokensPerSec float64 `json:"decode_tokens_per_s_per_request"`
}

// benchRequest is the measurement of one request.
type benchRequest struct {
	ttft   time.Duration
	total  time.Duration
	tokens int
	err    error
}

func runBenchServe(ctx context.Context, out io.Writer, o benchServeOptions) error {
	if o.maxTokens < 1 {
		return errors.New("--max-tokens must be at least 1")
	}
	o.url = strings.TrimSuffix(o.url, "/")
	most := slices.Max(o.clients)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: most, MaxConnsPerHost: most}}
	if o.model == "" {
		m, err := firstModel(ctx, client, o.url)
		if err != nil {
			return err
		}
		o.model = m
	}
	// One request first, so that the levels do not pay for cold caches.
	if r := benchOne(ctx, client, o, -1); r.err != nil {
		return fmt.Errorf("warm-up request: %w", r.err)
	}
	if !o.json {
		fmt.Fprintf(out, "model %s at %s, %d generated tokens per request\n", o.model, o.url, o.maxTokens)
		fmt.Fprintf(out, "%8s %9s %8s %10s %12s %12s %12s %14s\n", "clients", "requests", "failed", "req/s", "gen tok/s", "TTFT p50", "TTFT p99", "tok/s/request")
	}
	next := 0
	for _, n := range o.clients {
		if n < 1 {
			return fmt.Errorf("--clients: %d is not a number of clients", n)
		}
		total := o.requests
		if total == 0 {
			total = max(4*n, 8)
		}
		lvl := benchLevelRun(ctx, client, o, n, total, &next)
		if o.json {
			b, _ := json.Marshal(lvl)
			fmt.Fprintln(out, string(b))
		} else {
			fmt.Fprintf(out, "%8d %9d %8d %10.2f %12.1f %10.0fms %10.0fms %14.1f\n", lvl.Clients, lvl.Requests, lvl.Failed,
				lvl.RequestsPerSec, lvl.TokensPerSec, lvl.TTFTp50ms, lvl.TTFTp99ms, lvl.DecodeTokensPerSec)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// benchLevelRun runs total requests with n concurrent clients.
func benchLevelRun(ctx context.Context, client *http.Client, o benchServeOptions, n, total int, next *int) benchLevel {
	var issued atomic.Int64
	results := make([]benchRequest, total)
	base := *next
	*next += total
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(issued.Add(1)) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				results[i] = benchOne(ctx, client, o, base+i)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	lvl := benchLevel{Clients: n, Requests: total, Seconds: wall.Seconds()}
	var ttfts []float64
	var rate float64
	for _, r := range results {
		if r.err != nil {
			lvl.Failed++
			continue
		}
		lvl.GeneratedTokens += r.tokens
		ttfts = append(ttfts, float64(r.ttft)/float64(time.Millisecond))
		if d := r.total - r.ttft; d > 0 && r.tokens > 1 {
			rate += float64(r.tokens-1) / d.Seconds()
		}
	}
	ok := total - lvl.Failed
	lvl.RequestsPerSec = float64(ok) / wall.Seconds()
	lvl.TokensPerSec = float64(lvl.GeneratedTokens) / wall.Seconds()
	if ok > 0 {
		lvl.DecodeTokensPerSec = rate / float64(ok)
		slices.Sort(ttfts)
		lvl.TTFTp50ms = percentile(ttfts, 0.50)
		lvl.TTFTp99ms = percentile(ttfts, 0.99)
	}
	return lvl
}

// percentile returns the p-quantile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// benchOne sends one streaming completion and measures it.
func benchOne(ctx context.Context, client *http.Client, o benchServeOptions, i int) benchRequest {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	prompt := o.prompt
	if i >= 0 {
		prompt = strconv.Itoa(i) + ". " + prompt
	}
	body, _ := json.Marshal(map[string]any{
		"model": o.model, "prompt": prompt, "max_tokens": o.maxTokens, "temperature": 0,
		"ignore_eos": true, "stream": true, "stream_options": map[string]bool{"include_usage": true},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return benchRequest{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return benchRequest{err: err}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return benchRequest{err: fmt.Errorf("status %d: %s", res.StatusCode, msg)}
	}
	r := benchRequest{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	chunks := 0
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			break
		}
		var ch struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &ch); err != nil {
			return benchRequest{err: fmt.Errorf("bad event %q: %w", line, err)}
		}
		if ch.Error != nil {
			return benchRequest{err: errors.New(ch.Error.Message)}
		}
		if len(ch.Choices) > 0 && ch.Choices[0].Text != "" {
			if r.ttft == 0 {
				r.ttft = time.Since(start)
			}
			chunks++
		}
		if ch.Usage != nil {
			r.tokens = ch.Usage.CompletionTokens
		}
	}
	if err := sc.Err(); err != nil {
		return benchRequest{err: err}
	}
	r.total = time.Since(start)
	if r.tokens == 0 {
		// A server without usage chunks: count text chunks instead.
		r.tokens = chunks
	}
	return r
}

// firstModel returns the first model the server lists.
func firstModel(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/models", nil)
	if err != nil {
		return "", err
	}
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("list models: %w", err)
	}
	defer res.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		return "", fmt.Errorf("list models: %w", err)
	}
	if len(list.Data) == 0 {
		return "", fmt.Errorf("the server at %s serves no models", url)
	}
	return list.Data[0].ID, nil
}
