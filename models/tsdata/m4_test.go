package tsdata

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/testenv"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestM4SetsAndFiles(t *testing.T) {
	if M4Hourly.Horizon != 48 || M4Hourly.Period != 24 || M4Weekly.Horizon != 13 || M4Weekly.Period != 1 {
		t.Fatalf("sets %+v %+v", M4Hourly, M4Weekly)
	}
	tr, te := M4Hourly.Files()
	if tr != "Hourly-train.csv" || te != "Hourly-test.csv" {
		t.Errorf("hourly files %q %q", tr, te)
	}
	s, err := M4SetByName("Weekly")
	if err != nil || s != M4Weekly {
		t.Errorf("M4SetByName(Weekly) = %+v, %v", s, err)
	}
	if _, err := M4SetByName("daily"); err == nil || !strings.Contains(err.Error(), `"daily"`) {
		t.Errorf("unknown set: %v", err)
	}
}

func TestSMAPEKnownAnswers(t *testing.T) {
	// 200/2 · (10/210 + 20/380)
	got := SMAPE([]float64{100, 200}, []float64{110, 180})
	if want := 100 * (10.0/210 + 20.0/380); !near(got, want, 1e-12) {
		t.Errorf("sMAPE = %v, want %v", got, want)
	}
	// A step where truth and forecast are both 0 is no error; a sign
	// error is the maximum, 200.
	if got := SMAPE([]float64{0, 10}, []float64{0, 10}); got != 0 {
		t.Errorf("sMAPE of exact forecast with zeros = %v", got)
	}
	if got := SMAPE([]float64{5}, []float64{-5}); got != 200 {
		t.Errorf("sMAPE of a sign error = %v, want 200", got)
	}
}

func TestMASEKnownAnswers(t *testing.T) {
	h := []float64{1, 3, 2, 5, 4}
	// Lag 2: |2-1|, |5-3|, |4-2| → 5/3.
	if got := MASEScale(h, 2); !near(got, 5.0/3, 1e-12) {
		t.Errorf("scale at period 2 = %v, want 5/3", got)
	}
	// Lag 1: 2, 1, 3, 1 → 7/4; also when the history is shorter than a
	// period and one, and for period 1.
	for _, p := range []int{1, 0, 5, 24} {
		if got := MASEScale(h, p); !near(got, 7.0/4, 1e-12) {
			t.Errorf("scale at period %d = %v, want 7/4", p, got)
		}
	}
	if got := MASEScale([]float64{1, math.NaN(), 2, 4}, 1); !near(got, 2, 1e-12) {
		t.Errorf("scale skipping a missing value = %v, want 2", got)
	}
	if got := MASEScale([]float64{3}, 1); !math.IsNaN(got) {
		t.Errorf("scale of one value = %v, want NaN", got)
	}
	if got := MASE([]float64{6, 6}, []float64{5, 8}, 1.5); !near(got, 1, 1e-12) {
		t.Errorf("MASE = %v, want 1", got)
	}
	if got := OWA(10, 2, 20, 1); !near(got, (0.5+2)/2, 1e-12) {
		t.Errorf("OWA = %v", got)
	}
}

// alternating returns n values a, b, a, b, ...
func alternating(n int, a, b float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = a
		if i%2 == 1 {
			x[i] = b
		}
	}
	return x
}

func TestSeasonalityTestKnownAnswers(t *testing.T) {
	// 1, 3, 1, 3, ... of 8 values: deviations ±1, r1 = -7/8, r2 = 6/8;
	// the limit is 1.645·sqrt((1 + 2·49/64)/8) = 0.9253 > 0.75.
	if SeasonalityTest(alternating(8, 1, 3), 2) {
		t.Error("8 alternating values passed at period 2")
	}
	// 40 values: r1 = -39/40, r2 = 38/40 = 0.95 against 1.645·sqrt((1 +
	// 2·0.9506)/40) = 0.443.
	if !SeasonalityTest(alternating(40, 1, 3), 2) {
		t.Error("40 alternating values failed at period 2")
	}
	if SeasonalityTest(alternating(40, 1, 3), 1) {
		t.Error("period 1 is never seasonal")
	}
	if SeasonalityTest(alternating(5, 1, 3), 2) {
		t.Error("fewer than three periods passed")
	}
	if SeasonalityTest(make([]float64, 100), 4) {
		t.Error("a constant series passed")
	}
	// A clean daily cycle of hourly values: 200 values hold 8 days but R's
	// acf (the reference code's) stops at lag ⌊10·log10 200⌋ = 23 < 24.
	day := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = 100 + 30*math.Sin(2*math.Pi*float64(i)/24)
		}
		return x
	}
	if SeasonalityTest(day(200), 24) {
		t.Error("200 hourly values passed at lag 24, beyond the reference lag limit")
	}
	if !SeasonalityTest(day(260), 24) {
		t.Error("260 hourly values of a daily cycle failed")
	}
	h := day(300)
	h[17] = math.NaN()
	if SeasonalityTest(h, 24) {
		t.Error("a history with a missing value passed")
	}
}

func TestSeasonalIndicesAndNaive2(t *testing.T) {
	// A level times a season: the indices are the season itself.
	s := []float64{0.5, 1, 1.5, 1}
	x := make([]float64, 16)
	for i := range x {
		x[i] = 10 * s[i%4]
	}
	idx, ok := SeasonalIndices(x, 4)
	if !ok {
		t.Fatal("indices not formed")
	}
	for i := range s {
		if !near(idx[i], s[i], 1e-12) {
			t.Fatalf("indices %v, want %v", idx, s)
		}
	}
	// Odd period: a 3-value season.
	s3 := []float64{0.8, 1.4, 0.8}
	x3 := make([]float64, 12)
	for i := range x3 {
		x3[i] = 5 * s3[i%3]
	}
	if idx, ok := SeasonalIndices(x3, 3); !ok || !near(idx[0], 0.8, 1e-12) || !near(idx[1], 1.4, 1e-12) {
		t.Errorf("odd-period indices %v, %v", idx, ok)
	}
	if _, ok := SeasonalIndices([]float64{1, -1, 1, -1, 1, -1}, 2); ok {
		t.Error("indices of a series whose moving average is 0 were formed")
	}

	// An exactly multiplicative hourly series: Naive2 continues it exactly.
	prof := make([]float64, 24)
	var mean float64
	for i := range prof {
		prof[i] = 1 + 0.6*math.Sin(2*math.Pi*float64(i)/24) + 0.2*math.Cos(4*math.Pi*float64(i)/24)
		mean += prof[i] / 24
	}
	n, h := 24*15+7, 48
	all := make([]float64, n+h)
	for i := range all {
		all[i] = 250 * prof[i%24] / mean
	}
	f, seasonal := Naive2(all[:n], h, 24)
	if !seasonal {
		t.Fatal("Naive2 did not deseasonalize a seasonal series")
	}
	for k := range f {
		if !near(f[k], all[n+k], 1e-9) {
			t.Fatalf("Naive2 step %d = %v, want %v", k, f[k], all[n+k])
		}
	}
	if e := SMAPE(all[n:], f); e > 1e-9 {
		t.Errorf("Naive2 sMAPE %v on an exactly multiplicative series", e)
	}
	// Seasonal naive also continues it, naive does not.
	if e := SMAPE(all[n:], SeasonalNaiveForecast(all[:n], h, 24)); e > 1e-9 {
		t.Errorf("seasonal naive sMAPE %v", e)
	}
	if e := SMAPE(all[n:], NaiveForecast(all[:n], h)); e < 1 {
		t.Errorf("naive sMAPE %v on a seasonal series", e)
	}
	// A trend passes the M4 test (its autocorrelation is high at every
	// lag) but has flat indices, so Naive2 stays naive.
	line := make([]float64, 300)
	for i := range line {
		line[i] = 10 + float64(i)
	}
	if f, _ := Naive2(line, 5, 24); !near(f[0], 309, 1e-9) || !near(f[4], 309, 1e-9) {
		t.Errorf("Naive2 of a line: %v", f)
	}
	// Noise without a season is not deseasonalized: Naive2 is naive.
	noise := make([]float64, 300)
	for i := range noise {
		noise[i] = 100 + math.Sin(float64(i*i))
	}
	if f, seasonal := Naive2(noise, 5, 24); seasonal || f[0] != noise[299] || f[4] != noise[299] {
		t.Errorf("Naive2 of noise: %v, seasonal %v", f, seasonal)
	}
	if f, seasonal := Naive2(all[:n], 3, 1); seasonal || f[2] != all[n-1] {
		t.Errorf("Naive2 at period 1: %v, seasonal %v", f, seasonal)
	}
}

func TestNaiveForecasts(t *testing.T) {
	h := []float64{1, 2, 3, 4, 5, math.NaN()}
	if f := NaiveForecast(h, 3); f[0] != 5 || f[2] != 5 {
		t.Errorf("naive %v", f)
	}
	// Period 3 repeats the last 3 values, the missing one replaced by
	// the naive forecast.
	if f := SeasonalNaiveForecast(h, 5, 3); f[0] != 4 || f[1] != 5 || f[2] != 5 || f[3] != 4 {
		t.Errorf("seasonal naive %v", f)
	}
	if f := SeasonalNaiveForecast(h, 2, 1); f[0] != 5 || f[1] != 5 {
		t.Errorf("seasonal naive at period 1: %v", f)
	}
}

func TestPairM4(t *testing.T) {
	train := []Series{{Name: "H1", Values: []float64{1, 2}}, {Name: "H2", Values: []float64{3}}}
	test := []Series{{Name: "H2", Values: []float64{4}}, {Name: "H1", Values: []float64{5}}}
	p, err := PairM4(train, test)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || p[0].ID != "H1" || p[0].Test[0] != 5 || p[1].ID != "H2" || p[1].Train[0] != 3 {
		t.Errorf("pairs %+v", p)
	}
	cases := []struct {
		train, test []Series
		want        string
	}{
		{train, []Series{{Name: "H1"}, {Name: "H3"}}, `"H2" of the training file is not in the test file`},
		{train[:1], test, `"H2" of the test file is not in the training file`},
		{append(train, train[0]), test, `"H1" appears twice in the training file`},
		{train, append(test, test[0]), `"H2" appears twice in the test file`},
	}
	for _, c := range cases {
		if _, err := PairM4(c.train, c.test); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error with %q, got %v", c.want, err)
		}
	}
}

// lookupForecaster answers each window with the values stored for its
// history length, or with its last value.
type lookupForecaster struct{ byLen map[int][]float64 }

func (f lookupForecaster) Forecast(_ context.Context, ws []Window, h int) ([][][]float32, error) {
	out := make([][][]float32, len(ws))
	for i, w := range ws {
		s := w.Series[0]
		p := make([]float32, h)
		for k := range p {
			if v, ok := f.byLen[len(s)]; ok {
				p[k] = float32(v[k])
			} else {
				p[k] = s[len(s)-1]
			}
		}
		out[i] = [][]float32{p}
	}
	return out, nil
}

func TestEvaluateM4(t *testing.T) {
	set := M4Set{Name: "test", Horizon: 4, Period: 2}
	// Three scored series of different lengths (so the forecaster can tell
	// them apart), one skipped for a constant history (MASE scale 0).
	mk := func(n int, f func(i int) float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	seasonal := mk(44, func(i int) float64 { return float64(10 + 5*(i%2) + i/10) })
	trend := mk(31, func(i int) float64 { return 50 + 2*float64(i) })
	walk := mk(27, func(i int) float64 { return 20 + math.Sin(float64(i*i)) })
	flat := mk(30, func(int) float64 { return 7 })
	train := []Series{{"S", seasonal[:40]}, {"T", trend[:27]}, {"W", walk[:23]}, {"F", flat[:26]}}
	test := []Series{{"S", seasonal[40:]}, {"T", trend[27:]}, {"W", walk[23:]}, {"F", flat[26:]}}
	exact := lookupForecaster{byLen: map[int][]float64{}}
	for i, s := range train {
		exact.byLen[min(len(s.Values), 30)] = test[i].Values
	}
	var calls []int
	res, err := EvaluateM4(context.Background(), train, test, set, exact, 2, 30, func(done, total int) { calls = append(calls, done, total) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Series != 3 || len(res.Skipped) != 1 || res.Skipped[0] != "F" {
		t.Fatalf("scored %d, skipped %v", res.Series, res.Skipped)
	}
	if len(calls) != 4 || calls[0] != 2 || calls[2] != 3 || calls[3] != 3 {
		t.Errorf("progress calls %v", calls)
	}
	// (The forecaster's float32 values round the truth slightly.)
	if res.Model.SMAPE > 1e-5 || res.Model.MASE > 1e-5 || res.Model.OWA > 1e-5 {
		t.Errorf("an exact forecaster scored %+v", res.Model)
	}
	if res.Naive2.OWA != 1 {
		t.Errorf("Naive2 OWA %v, want exactly 1", res.Naive2.OWA)
	}
	// The averages are those of the per-series metrics.
	var want [3]M4Scores
	for i := range 3 {
		h, truth := train[i].Values, test[i].Values
		scale := MASEScale(h, 2)
		n2, _ := Naive2(h, 4, 2)
		for j, f := range [][]float64{NaiveForecast(h, 4), SeasonalNaiveForecast(h, 4, 2), n2} {
			want[j].SMAPE += SMAPE(truth, f) / 3
			want[j].MASE += MASE(truth, f, scale) / 3
		}
	}
	got := []M4Scores{res.Naive, res.SeasonalNaive, res.Naive2}
	for j := range want {
		if !near(got[j].SMAPE, want[j].SMAPE, 1e-9) || !near(got[j].MASE, want[j].MASE, 1e-9) {
			t.Errorf("method %d: %+v, want %+v", j, got[j], want[j])
		}
		if owa := OWA(want[j].SMAPE, want[j].MASE, want[2].SMAPE, want[2].MASE); !near(got[j].OWA, owa, 1e-9) {
			t.Errorf("method %d: OWA %v, want %v", j, got[j].OWA, owa)
		}
	}
	wantSeasonal := 0
	for _, s := range train[:3] {
		if SeasonalityTest(s.Values, 2) {
			wantSeasonal++
		}
	}
	if !SeasonalityTest(train[0].Values, 2) || res.Seasonal != wantSeasonal {
		t.Errorf("%d series deseasonalized, want %d (with S)", res.Seasonal, wantSeasonal)
	}
	// A forecaster returning the last value scores as naive.
	res, err = EvaluateM4(context.Background(), train, test, set, lookupForecaster{}, 0, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Model.SMAPE, res.Naive.SMAPE, 1e-5) || !near(res.Model.MASE, res.Naive.MASE, 1e-5) {
		t.Errorf("last-value forecaster %+v, naive %+v", res.Model, res.Naive)
	}
}

type nanForecaster struct{}

func (nanForecaster) Forecast(_ context.Context, ws []Window, h int) ([][][]float32, error) {
	out := make([][][]float32, len(ws))
	for i := range out {
		p := make([]float32, h)
		p[1] = float32(math.NaN())
		out[i] = [][]float32{p}
	}
	return out, nil
}

func TestEvaluateM4Errors(t *testing.T) {
	set := M4Set{Name: "test", Horizon: 2, Period: 1}
	train := []Series{{"A", []float64{1, 2, 3}}}
	ctx := context.Background()
	cases := []struct {
		test  []Series
		fc    Forecaster
		steps int
		want  string
	}{
		{[]Series{{"A", []float64{4, 5}}}, nanForecaster{}, 10, `series "A": forecast step 1 is NaN`},
		{[]Series{{"A", []float64{4}}}, lookupForecaster{}, 10, `series "A" has 1 test values, want 2`},
		{[]Series{{"B", []float64{4, 5}}}, lookupForecaster{}, 10, `id "A" of the training file is not in the test file`},
		{[]Series{{"A", []float64{4, math.NaN()}}}, lookupForecaster{}, 10, `no series can be scored (1 skipped)`},
		{[]Series{{"A", []float64{4, 5}}}, lookupForecaster{}, 0, `context 0 is not positive`},
	}
	for _, c := range cases {
		if _, err := EvaluateM4(ctx, train, c.test, set, c.fc, 1, c.steps, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error with %q, got %v", c.want, err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := EvaluateM4(cancelled, train, []Series{{"A", []float64{4, 5}}}, set, lookupForecaster{}, 1, 10, nil); err == nil {
		t.Error("a cancelled context did not stop the evaluation")
	}
}

// TestM4SharedFiles scores the benchmarks on the real M4 hourly and weekly
// files. The naive, seasonal-naive and Naive2 scores must be the ones the
// competition published for its benchmarks (Makridakis, Spiliotis and
// Assimakopoulos, "The M4 Competition: 100,000 time series and 61
// forecasting methods", IJF 2020), to their three decimals: a check of the
// metrics, the seasonality test and the decomposition end to end.
func TestM4SharedFiles(t *testing.T) {
	for _, c := range []struct {
		set          M4Set
		series       int
		naive2       M4Scores
		naive, snaiv float64 // published sMAPE of naive and seasonal naive
	}{
		{M4Hourly, 414, M4Scores{18.383, 2.395, 1}, 43.003, 13.912},
		{M4Weekly, 359, M4Scores{9.161, 2.777, 1}, 9.161, 9.161},
	} {
		trainName, testName := c.set.Files()
		train, err := LoadWideCSV(testenv.Path(t, filepath.Join("../tsdata/m4", trainName)))
		if err != nil {
			t.Fatal(err)
		}
		test, err := LoadWideCSV(testenv.Path(t, filepath.Join("../tsdata/m4", testName)))
		if err != nil {
			t.Fatal(err)
		}
		if len(train) != c.series || len(test) != c.series {
			t.Fatalf("%s: %d training and %d test series, want %d", c.set.Name, len(train), len(test), c.series)
		}
		res, err := EvaluateM4(context.Background(), train, test, c.set, lookupForecaster{}, 64, 1024, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d series (%d seasonal), naive %+v, seasonal naive %+v, Naive2 %+v",
			c.set.Name, res.Series, res.Seasonal, res.Naive, res.SeasonalNaive, res.Naive2)
		if res.Series != c.series || len(res.Skipped) != 0 {
			t.Errorf("%s: scored %d, skipped %v", c.set.Name, res.Series, res.Skipped)
		}
		if !near(res.Naive2.SMAPE, c.naive2.SMAPE, 0.0005) || !near(res.Naive2.MASE, c.naive2.MASE, 0.0005) ||
			!near(res.Naive.SMAPE, c.naive, 0.0005) || !near(res.SeasonalNaive.SMAPE, c.snaiv, 0.0005) {
			t.Errorf("%s: naive sMAPE %.4f, seasonal naive %.4f, Naive2 %+v; the competition's are %.3f, %.3f, %+v",
				c.set.Name, res.Naive.SMAPE, res.SeasonalNaive.SMAPE, res.Naive2, c.naive, c.snaiv, c.naive2)
		}
		if res.Naive2.OWA != 1 {
			t.Errorf("%s: Naive2 OWA %v, want exactly 1", c.set.Name, res.Naive2.OWA)
		}
		if !near(res.Model.SMAPE, res.Naive.SMAPE, 1e-4) || !near(res.Model.MASE, res.Naive.MASE, 1e-5) {
			t.Errorf("%s: last-value forecaster %+v, naive %+v", c.set.Name, res.Model, res.Naive)
		}
		switch c.set {
		case M4Hourly:
			if res.SeasonalNaive.SMAPE >= res.Naive.SMAPE {
				t.Errorf("hourly: seasonal naive sMAPE %v does not beat naive %v", res.SeasonalNaive.SMAPE, res.Naive.SMAPE)
			}
		case M4Weekly:
			if res.SeasonalNaive != res.Naive || res.Naive2 != res.Naive {
				t.Errorf("weekly (period 1): seasonal naive %+v and Naive2 %+v differ from naive %+v", res.SeasonalNaive, res.Naive2, res.Naive)
			}
		}
	}
}
