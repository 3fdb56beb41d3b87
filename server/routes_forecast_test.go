package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carryon/carryon/models/gtt"
	"github.com/carryon/carryon/server/config"
)

var (
	forecastPluginOnce sync.Once
	forecastPluginDir  string
	forecastPluginErr  error
)

// forecastPlugins builds the GTT forecaster plugin once into a directory of
// the package's temporary folder and returns it.
func forecastPlugins(t testing.TB) string {
	t.Helper()
	forecastPluginOnce.Do(func() {
		forecastPluginDir = filepath.Join(modelDir, "forecast-plugins")
		out, err := exec.Command("go", "build", "-o", filepath.Join(forecastPluginDir, "gtt"), "github.com/carryon/carryon/plugins/gtt").CombinedOutput()
		if err != nil {
			forecastPluginErr = fmt.Errorf("build the gtt plugin: %v\n%s", err, out)
		}
	})
	if forecastPluginErr != nil {
		t.Fatal(forecastPluginErr)
	}
	return forecastPluginDir
}

// forecastServer starts a server with no language model and the gtt
// plugin.
func forecastServer(t testing.TB, edit func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig(t)
	cfg.PluginsDir = forecastPlugins(t)
	if edit != nil {
		edit(&cfg)
	}
	return startServer(t, cfg)
}

// forecastReply is the part of a /v1/forecast answer the tests read.
type forecastReply struct {
	Model     string `json:"model"`
	Forecasts []struct {
		Name       string         `json:"name"`
		Mean       any            `json:"mean"`
		Quantiles  map[string]any `json:"quantiles"`
		Timestamps []string       `json:"timestamps"`
	} `json:"forecasts"`
	Usage struct {
		Series, Channels, Steps, Horizon int
		ForecastMS                       float64 `json:"forecast_ms"`
		TotalMS                          float64 `json:"total_ms"`
	} `json:"usage"`
}

func floats(t testing.TB, v any) []float64 {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("not a list: %v", v)
	}
	out := make([]float64, len(list))
	for i, x := range list {
		f, ok := x.(float64)
		if !ok {
			t.Fatalf("element %d is %v", i, x)
		}
		out[i] = f
	}
	return out
}

func TestForecastRoute(t *testing.T) {
	s := forecastServer(t, nil)
	hourly := make([]string, 200)
	for i := range hourly {
		hourly[i] = fmt.Sprintf("%q", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Hour).Format(time.RFC3339))
	}
	body := `{"model":"gtt-small","horizon":70,"quantiles":[0.1,0.5,0.9],"series":[
		{"name":"load","target":` + seriesJSON(300, 24) + `},
		{"target":[` + seriesJSON(200, 24) + `,` + seriesJSON(200, 12) + `],"timestamps":[` + strings.Join(hourly, ",") + `]},
		{"name":"gappy","target":[` + strings.Repeat("null,", 10) + strings.Trim(seriesJSON(100, 24), "[]") + `]}]}`
	r := s.post(t, "/v1/forecast", body)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var out forecastReply
	r.json(t, &out)
	if out.Model != "gtt-small" || len(out.Forecasts) != 3 || out.Usage.Series != 3 || out.Usage.Channels != 4 || out.Usage.Horizon != 70 ||
		out.Usage.Steps != 300+400+110 || out.Usage.TotalMS <= 0 {
		t.Fatalf("answer: %+v", out)
	}
	f0 := out.Forecasts[0]
	mean := floats(t, f0.Mean)
	if f0.Name != "load" || len(mean) != 70 {
		t.Fatalf("first forecast: %+v", f0)
	}
	q10, q50, q90 := floats(t, f0.Quantiles["0.1"]), floats(t, f0.Quantiles["0.5"]), floats(t, f0.Quantiles["0.9"])
	for k, v := range mean {
		truth := 10 + 3*math.Sin(2*math.Pi*float64(300+k)/24)
		if math.Abs(v-truth) > 1 {
			t.Errorf("step %d: %v, truth %v", k, v, truth)
		}
		if !(q10[k] <= q50[k] && q50[k] <= q90[k]) {
			t.Fatalf("step %d: quantiles %v %v %v", k, q10[k], q50[k], q90[k])
		}
	}
	f1 := out.Forecasts[1]
	ch, ok := f1.Mean.([]any)
	if f1.Name != "1" || !ok || len(ch) != 2 || len(floats(t, ch[1])) != 70 {
		t.Fatalf("2-D forecast: %+v", f1)
	}
	if q, ok := f1.Quantiles["0.9"].([]any); !ok || len(q) != 2 || len(floats(t, q[0])) != 70 {
		t.Errorf("2-D quantiles: %v", f1.Quantiles["0.9"])
	}
	if len(f1.Timestamps) != 70 || f1.Timestamps[0] != "2024-03-09T08:00:00Z" {
		t.Errorf("timestamps %v", f1.Timestamps[:2])
	}
	if len(floats(t, out.Forecasts[2].Mean)) != 70 {
		t.Errorf("gappy series")
	}

	// Unknown model, invalid field, wrong method.
	r = s.post(t, "/v1/forecast", `{"model":"nope","horizon":3,"series":[{"target":`+seriesJSON(20, 5)+`}]}`)
	if r.status != http.StatusNotFound || !strings.Contains(string(r.body), `"code":"model_not_found"`) {
		t.Errorf("unknown model: %d %s", r.status, r.body)
	}
	r = s.post(t, "/v1/forecast", `{"model":"gtt-small","horizon":3,"series":[{"target":`+seriesJSON(20, 5)+`},{"target":[1,2,"three"]}]}`)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"param":"series[1].target[2]"`) {
		t.Errorf("bad value: %d %s", r.status, r.body)
	}
	r = s.get(t, "/v1/forecast")
	if r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", r.status)
	}
	r = s.get(t, "/v1/forecasters")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"id":"gtt-small"`) || !strings.Contains(string(r.body), `"builtin":true`) {
		t.Errorf("list: %d %s", r.status, r.body)
	}
}

// TestForecastWithoutPlugin: a server without a forecaster plugin says how
// to get one.
func TestForecastWithoutPlugin(t *testing.T) {
	cfg := testConfig(t)
	cfg.PluginsDir = filepath.Join(t.TempDir(), "none")
	s := startServer(t, cfg)
	r := s.post(t, "/v1/forecast", `{"model":"gtt-small","horizon":3,"series":[{"target":`+seriesJSON(20, 5)+`}]}`)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "make plugins") {
		t.Errorf("%d %s", r.status, r.body)
	}
}

// TestForecastRawHTTP sends a request as curl would, byte for byte, and
// reads the raw answer.
func TestForecastRawHTTP(t *testing.T) {
	s := forecastServer(t, nil)
	body := `{"model":"gtt-small","horizon":4,"series":[{"target":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}]}`
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/forecast HTTP/1.1\r\nHost: %s\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", s.addr, len(body), body)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %s", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	var out forecastReply
	response{body: b}.json(t, &out)
	mean := floats(t, out.Forecasts[0].Mean)
	if len(mean) != 4 || mean[0] < 19 || mean[0] > 23 {
		t.Errorf("a ramp to 20 forecasts %v", mean)
	}

	// A horizon beyond the cap says the cap.
	bad := `{"model":"gtt-small","horizon":5000,"series":[{"target":[1,2,3]}]}`
	fmt.Fprintf(conn, "POST /v1/forecast HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", s.addr, len(bad), bad)
	res, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(b), `"param":"horizon"`) || !strings.Contains(string(b), "4096") {
		t.Errorf("%d %s", res.StatusCode, b)
	}
}

// TestForecastMergesConcurrentRequests: requests that arrive while a plugin
// call runs share the next call, and each gets its own answer.
func TestForecastMergesConcurrentRequests(t *testing.T) {
	s := forecastServer(t, nil)
	const n = 12
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"model":"gtt-small","horizon":128,"series":[{"name":"s%d","target":%s}]}`, i, seriesJSON(1024, float64(10+i)))
	}
	// Each request alone, for reference.
	want := make([]string, n)
	for i, b := range bodies {
		var out forecastReply
		s.post(t, "/v1/forecast", b).json(t, &out)
		want[i] = fmt.Sprint(out.Forecasts[0].Mean)
	}
	before := s.forecasts.batch.calls.Load()
	var wg sync.WaitGroup
	got := make([]string, n)
	names := make([]string, n)
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out forecastReply
			r := s.post(t, "/v1/forecast", b)
			if r.status != 200 {
				t.Errorf("%d %s", r.status, r.body)
				return
			}
			r.json(t, &out)
			got[i], names[i] = fmt.Sprint(out.Forecasts[0].Mean), out.Forecasts[0].Name
		}()
	}
	wg.Wait()
	calls := s.forecasts.batch.calls.Load() - before
	t.Logf("%d concurrent requests took %d plugin calls", n, calls)
	if calls >= n {
		t.Errorf("%d requests took %d plugin calls; none were merged", n, calls)
	}
	for i := range got {
		if names[i] != fmt.Sprintf("s%d", i) {
			t.Errorf("request %d got series %q", i, names[i])
		}
		if got[i] != want[i] {
			t.Errorf("request %d: merged answer differs from the answer alone", i)
		}
	}
}

// patternJSON is a pulse train whose every third pulse is negative, a
// shape the pretrained model does not expect, as a JSON list.
func patternValues(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		v := 10 + 0.05*math.Sin(float64(i)*1.7)
		if i%12 < 3 {
			v++
			if (i/12)%3 == 2 {
				v -= 2.5
			}
		}
		out[i] = v
	}
	return out
}

func jsonList(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.4f", x)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// TestForecasterTuning fine-tunes a model over HTTP on a patterned series
// and checks that it beats the base on a held-out tail it never saw, that
// it survives a restart, and that it can be removed.
func TestForecasterTuning(t *testing.T) {
	dataDir := t.TempDir()
	s := forecastServer(t, func(c *config.Config) { c.DataDir = dataDir })
	full := patternValues(1400)
	train, tail := full[:1300], full[1300:]
	r := s.post(t, "/v1/forecasters", `{"name":"tenant-a","base":"gtt-small","steps":120,"series":[{"target":`+jsonList(train)+`}]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("tune: %d %s", r.status, r.body)
	}
	var created struct {
		ID       string
		Channels int
		Tuning   struct {
			Base             string
			BaseHoldoutLoss  float64 `json:"base_holdout_loss"`
			TunedHoldoutLoss float64 `json:"tuned_holdout_loss"`
		}
	}
	r.json(t, &created)
	if created.ID != "tenant-a" || created.Channels != 1 || created.Tuning.Base != "gtt-small" {
		t.Fatalf("created: %s", r.body)
	}
	// The networks alone: the default guard's seasonal mix would continue
	// this periodic pattern for both.
	mse := func(model string) float64 {
		var out forecastReply
		r := s.post(t, "/v1/forecast", fmt.Sprintf(`{"model":%q,"horizon":%d,"guard":"off","series":[{"target":%s}]}`, model, len(tail), jsonList(train)))
		if r.status != 200 {
			t.Fatalf("%s: %d %s", model, r.status, r.body)
		}
		r.json(t, &out)
		var sum float64
		for k, v := range floats(t, out.Forecasts[0].Mean) {
			sum += (v - tail[k]) * (v - tail[k])
		}
		return sum / float64(len(tail))
	}
	base, tuned := mse("gtt-small"), mse("tenant-a")
	t.Logf("held-out tail MSE: base %.4f, tuned %.4f (tuning report: %.4f -> %.4f)", base, tuned, created.Tuning.BaseHoldoutLoss, created.Tuning.TunedHoldoutLoss)
	if !(tuned < 0.8*base) {
		t.Errorf("tuned model MSE %.4f is not below 80%% of the base's %.4f", tuned, base)
	}
	// A tuned model needs its channel count.
	r = s.post(t, "/v1/forecast", `{"model":"tenant-a","horizon":3,"series":[{"target":[`+jsonList(train)+`,`+jsonList(train)+`]}]}`)
	if r.status != 400 || !strings.Contains(string(r.body), `"param":"series[0].target"`) {
		t.Errorf("two channels: %d %s", r.status, r.body)
	}
	// Bad tuning requests.
	for body, param := range map[string]string{
		`{"name":"gtt-small","series":[{"target":` + jsonList(train) + `}]}`:           "name",
		`{"name":"../x","series":[{"target":` + jsonList(train) + `}]}`:                "name",
		`{"name":"b","base":"tenant-a","series":[{"target":` + jsonList(train) + `}]}`: "base",
		`{"name":"b","series":[{"target":` + jsonList(train[:40]) + `}]}`:              "series",
		`{"name":"b","steps":0,"series":[{"target":` + jsonList(train) + `}]}`:         "steps",
		`{"name":"b","series":[{"target":[1,2,"x"]}]}`:                                 "series[0].target[2]",
	} {
		r := s.post(t, "/v1/forecasters", body)
		if (r.status != 400 && r.status != 409) || !strings.Contains(string(r.body), fmt.Sprintf(`"param":%q`, param)) {
			t.Errorf("%.60s: %d %s", body, r.status, r.body)
		}
	}

	// A new server on the same data directory serves it again.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := forecastServer(t, func(c *config.Config) { c.DataDir = dataDir })
	r = s2.get(t, "/v1/forecasters/tenant-a")
	if r.status != 200 || !strings.Contains(string(r.body), `"tuned_holdout_loss"`) {
		t.Fatalf("after restart: %d %s", r.status, r.body)
	}
	s = s2
	if again := mse("tenant-a"); math.Abs(again-tuned) > 1e-6 {
		t.Errorf("after restart the MSE is %v, was %v", again, tuned)
	}
	r = s.do(t, http.MethodDelete, "/v1/forecasters/tenant-a", "")
	if r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r = s.post(t, "/v1/forecast", `{"model":"tenant-a","horizon":3,"series":[{"target":`+jsonList(train)+`}]}`); r.status != 404 {
		t.Errorf("after delete: %d", r.status)
	}
	if r = s.do(t, http.MethodDelete, "/v1/forecasters/gtt-small", ""); r.status != 400 {
		t.Errorf("delete built-in: %d", r.status)
	}
	if r = s.do(t, http.MethodDelete, "/v1/forecasters/tenant-a", ""); r.status != 404 {
		t.Errorf("delete twice: %d", r.status)
	}
}

// TestForecasterAdminKey: with an admin key, tuning and deletion need it;
// listing and forecasting do not.
func TestForecasterAdminKey(t *testing.T) {
	s := forecastServer(t, func(c *config.Config) { c.AdminKey = "sesame" })
	if r := s.post(t, "/v1/forecasters", `{"name":"x","series":[{"target":[1,2,3]}]}`); r.status != 401 {
		t.Errorf("tune without key: %d", r.status)
	}
	if r := s.do(t, http.MethodDelete, "/v1/forecasters/x", ""); r.status != 401 {
		t.Errorf("delete without key: %d", r.status)
	}
	if r := s.get(t, "/v1/forecasters"); r.status != 200 {
		t.Errorf("list: %d", r.status)
	}
}

// BenchmarkForecastHTTP posts /v1/forecast with n univariate series of
// 1024 steps and horizon 96 to a server whose gtt plugin runs one thread:
// JSON parsing, the plugin call over gRPC and the model, end to end.
func BenchmarkForecastHTTP(b *testing.B) {
	b.Setenv("CARRYON_GTT_THREADS", "1")
	s := forecastServer(b, nil)
	for _, n := range []int{1, 32, 512} {
		items := make([]string, n)
		for i := range items {
			items[i] = `{"target":` + seriesJSON(1024, float64(12+i%40)) + `}`
		}
		body := `{"model":"gtt-small","horizon":96,"series":[` + strings.Join(items, ",") + `]}`
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if r := s.post(b, "/v1/forecast", body); r.status != 200 {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "series/s")
		})
	}
}

// TestForecasterPluginRestart kills the gtt plugin: requests fail with a
// 503 (never hang) until the supervisor has restarted it, and the tuned
// models stored in the data directory are loaded again.
func TestForecasterPluginRestart(t *testing.T) {
	dataDir := t.TempDir()
	base, _, err := gtt.Default()
	if err != nil {
		t.Fatal(err)
	}
	series := make([]float32, 300)
	for i := range series {
		series[i] = float32(patternValues(300)[i])
	}
	tu, err := gtt.FineTune(context.Background(), base, "gtt-small", []gtt.Input{{Series: [][]float32{series}}}, gtt.TuneConfig{Steps: 2, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := tu.Save(filepath.Join(dataDir, "forecasters", "kept")); err != nil {
		t.Fatal(err)
	}
	s := forecastServer(t, func(c *config.Config) { c.DataDir = dataDir })
	body := `{"model":"kept","horizon":8,"series":[{"target":` + jsonList(patternValues(300)) + `}]}`
	if r := s.post(t, "/v1/forecast", body); r.status != 200 {
		t.Fatalf("before: %d %s", r.status, r.body)
	}
	fm, ok := s.forecasts.lookup("kept")
	if !ok {
		t.Fatal("tuned model not registered")
	}
	pid := fm.pp.pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	saw503 := false
	for {
		r := s.post(t, "/v1/forecast", body)
		if r.status == 200 && fm.pp.pid() != pid && fm.pp.pid() != 0 {
			break
		}
		if r.status == 503 {
			saw503 = true
		} else if r.status != 200 {
			t.Fatalf("while restarting: %d %s", r.status, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin did not come back: %d %s", r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("restarted (pid %d -> %d); a 503 was seen: %v", pid, fm.pp.pid(), saw503)
	if r := s.post(t, "/v1/forecast", strings.Replace(body, `"kept"`, `"gtt-small"`, 1)); r.status != 200 {
		t.Errorf("built-in model after the restart: %d %s", r.status, r.body)
	}
}

// TestForecastClientGoneCancels: a client that hangs up stops its plugin
// call, so the next request for the same model, horizon and levels (which
// waits for that call) is answered soon.
func TestForecastClientGoneCancels(t *testing.T) {
	s := forecastServer(t, nil)
	items := make([]string, 512)
	for i := range items {
		items[i] = `{"target":` + seriesJSON(1024, float64(12+i%40)) + `}`
	}
	big := `{"model":"gtt-small","horizon":1024,"quantiles":[0.1,0.9],"series":[` + strings.Join(items, ",") + `]}`
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/forecast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(big), big)
	time.Sleep(1500 * time.Millisecond) // parsed, and the plugin call has started
	conn.Close()
	t0 := time.Now()
	small := `{"model":"gtt-small","horizon":1024,"quantiles":[0.1,0.9],"series":[{"target":` + seriesJSON(100, 10) + `}]}`
	if r := s.post(t, "/v1/forecast", small); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// The abandoned call (512 series, 9 forecasts each, 16 passes) takes
	// about 25 s here; cancelled, it ends within a pass.
	if took := time.Since(t0); took > 8*time.Second {
		t.Errorf("the next request took %v; the abandoned call was not cancelled", took)
	} else {
		t.Logf("next request answered after %v", took.Round(time.Millisecond))
	}
}

// TestForecasterTuningWithCovariates: past covariates count among a tuned
// model's channels; forecasts must bring the same ones.
func TestForecasterTuningWithCovariates(t *testing.T) {
	s := forecastServer(t, nil)
	y, x := jsonList(patternValues(400)), seriesJSON(400, 12)
	r := s.post(t, "/v1/forecasters", `{"name":"cov","steps":3,"holdout":0,"series":[{"target":`+y+`,"past_covariates":`+x+`}]}`)
	if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"channels":2`) || !strings.Contains(string(r.body), `"base_holdout_loss":null`) {
		t.Fatalf("tune: %d %s", r.status, r.body)
	}
	r = s.post(t, "/v1/forecast", `{"model":"cov","horizon":4,"series":[{"target":`+y+`,"past_covariates":`+x+`}]}`)
	var out forecastReply
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r.json(t, &out)
	if len(floats(t, out.Forecasts[0].Mean)) != 4 || out.Usage.Channels != 2 {
		t.Errorf("forecast: %s", r.body)
	}
	if r = s.post(t, "/v1/forecast", `{"model":"cov","horizon":4,"series":[{"target":`+y+`}]}`); r.status != 400 {
		t.Errorf("without the covariate: %d %s", r.status, r.body)
	}
	r = s.post(t, "/v1/forecasters", `{"name":"fut","series":[{"target":`+y+`,"future_covariates":`+x+`}]}`)
	if r.status != 400 || !strings.Contains(string(r.body), `"param":"series[0].future_covariates"`) {
		t.Errorf("future covariates in tuning: %d %s", r.status, r.body)
	}
}
