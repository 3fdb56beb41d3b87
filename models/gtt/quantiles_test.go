package gtt

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// noisySeasonal is a daily-like season of 24 steps under AR(1) noise.
func noisySeasonal(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	s := make([]float32, n)
	ar := 0.0
	for i := range s {
		ar = 0.6*ar + rng.NormFloat64()
		s[i] = float32(50 + 10*math.Sin(2*math.Pi*float64(i)/24) + 2*ar)
	}
	return s
}

// TestQuantilesCalibrated forecasts 60 windows of a synthetic series and
// checks that the 0.1–0.9 band holds about 80% of what followed: a little
// more is expected, as BandSpread widens bands for real series, which
// drift more than this one.
func TestQuantilesCalibrated(t *testing.T) {
	m, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	const horizon = 48
	full := noisySeasonal(4000, 9)
	var ins []Input
	var origins []int
	for o := 1200; o+horizon <= len(full); o += 45 {
		ins = append(ins, Input{Series: [][]float32{full[:o]}})
		origins = append(origins, o)
	}
	levels := []float64{0.1, 0.5, 0.9}
	preds, err := Quantiles(context.Background(), m, ins, horizon, levels)
	if err != nil {
		t.Fatal(err)
	}
	inside, below, total := 0, 0, 0
	for i, p := range preds {
		lo, mid, hi := p.Quantiles[0][0], p.Quantiles[1][0], p.Quantiles[2][0]
		for h := 0; h < horizon; h++ {
			if !(lo[h] <= mid[h] && mid[h] <= hi[h]) {
				t.Fatalf("window %d step %d: quantiles cross: %v %v %v", i, h, lo[h], mid[h], hi[h])
			}
			a := full[origins[i]+h]
			if a >= lo[h] && a <= hi[h] {
				inside++
			}
			if a < mid[h] {
				below++
			}
			total++
		}
	}
	cov := float64(inside) / float64(total)
	med := float64(below) / float64(total)
	t.Logf("%d windows: 0.1–0.9 coverage %.3f, below the median %.3f", len(ins), cov, med)
	if cov < 0.74 || cov > 0.9 {
		t.Errorf("0.1–0.9 band coverage %.3f, want about 0.80", cov)
	}
	if med < 0.4 || med > 0.6 {
		t.Errorf("share below the 0.5 quantile %.3f, want about 0.5", med)
	}
}

func TestQuantilesShortHistoryAndErrors(t *testing.T) {
	m, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Too short to backtest: a random-walk band that widens.
	short := []Input{{Series: [][]float32{{1, 2, 1.5, 2.5, 2, 3, 2.5}}}}
	p, err := Quantiles(ctx, m, short, 20, []float64{0.1, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := p[0].Quantiles[0][0], p[0].Quantiles[1][0]
	if !(hi[0]-lo[0] > 0 && hi[19]-lo[19] > 3*(hi[0]-lo[0])) {
		t.Errorf("short-history band does not widen: %v .. %v", hi[0]-lo[0], hi[19]-lo[19])
	}
	for _, levels := range [][]float64{{0}, {1}, {0.5, 0.5}, {0.9, 0.1}, {math.NaN()}} {
		if _, err := Quantiles(ctx, m, short, 5, levels); !errors.Is(err, ErrInvalid) {
			t.Errorf("levels %v: %v", levels, err)
		}
	}
	// Without levels it is the point forecast.
	p, err = Quantiles(ctx, m, short, 5, nil)
	if err != nil || p[0].Quantiles != nil || len(p[0].Mean[0]) != 5 {
		t.Errorf("no levels: %+v %v", p, err)
	}
}

// TestQuantilesChunksLikeOneCall: more inputs than MaxPassInputs are
// forecast in chunks, with the results of a single call.
func TestQuantilesChunksLikeOneCall(t *testing.T) {
	m, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ins := make([]Input, MaxPassInputs+3)
	for i := range ins {
		ins[i] = Input{Series: [][]float32{noisySeasonal(80+i%7, uint64(i))}}
	}
	p, err := Quantiles(context.Background(), m, ins, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	one, err := m.ForecastBatch(context.Background(), ins, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ins {
		for k, v := range one[i][0] {
			if p[i].Mean[0][k] != v {
				t.Fatalf("input %d step %d: chunked %v, one call %v", i, k, p[i].Mean[0][k], v)
			}
		}
	}
}

// TestStudentWidening checks the t-to-normal quantile ratio against
// tabulated quantiles of Student's t distribution.
func TestStudentWidening(t *testing.T) {
	for _, c := range []struct {
		q    float64
		df   int
		want float64 // t quantile
		tol  float64 // relative
	}{
		{0.9, 8, 1.3968, 0.001}, {0.95, 8, 1.8595, 0.001}, {0.99, 8, 2.8965, 0.001}, {0.1, 8, -1.3968, 0.001},
		{0.6, 8, 0.2619, 0.001}, {0.9, 4, 1.5332, 0.001}, {0.95, 4, 2.1318, 0.001}, {0.99, 4, 3.7469, 0.01},
		{0.9, 2, 1.8856, 0.005}, {0.95, 2, 2.9200, 0.015}, {0.95, 1, 2.9200, 0.015}, {0.9, 1000, 1.2824, 0.001},
	} {
		got := normalQuantile(c.q) * studentWidening(c.q, c.df)
		if math.Abs(got-c.want) > c.tol*math.Abs(c.want) {
			t.Errorf("level %v, df %d: t quantile %.4f, want %.4f", c.q, c.df, got, c.want)
		}
	}
	if w := studentWidening(0.5, 8); !(w > 1 && w < 1.05) {
		t.Errorf("widening at the median %v, want just above 1", w)
	}
}

// TestQuantilesWidenWithFewerOrigins: the same standardized errors seen
// from 2 origins give a wider band than from 8, as a scale estimated from
// fewer origins is less certain.
func TestQuantilesWidenWithFewerOrigins(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	two := make([][]float64, 2)
	for j := range two {
		two[j] = make([]float64, 40)
		for h := range two[j] {
			two[j][h] = rng.NormFloat64() * math.Sqrt(float64(h+1))
		}
	}
	var eight [][]float64
	for range 4 {
		eight = append(eight, two...)
	}
	hist := noisySeasonal(200, 1)
	levels := []float64{0.05, 0.1, 0.5, 0.9, 0.95}
	s2, d2 := residualModel(two, hist, 40, levels, 1)
	s8, d8 := residualModel(eight, hist, 40, levels, 1)
	for h := range s2 {
		if math.Abs(s2[h]-s8[h]) > 1e-9*s8[h] {
			t.Fatalf("step %d: scales differ: %v from 2 origins, %v from 8", h, s2[h], s8[h])
		}
	}
	for l, q := range levels {
		w2, w8 := math.Abs(d2[l]-d2[2]), math.Abs(d8[l]-d8[2])
		if q != 0.5 && !(w2 > 1.2*w8) {
			t.Errorf("level %v: distance from the median %.3f from 2 origins, %.3f from 8; want wider from 2", q, w2, w8)
		}
	}
	if _, d := residualModel(eight, hist, 40, levels, 1.5); math.Abs((d[4]-d[2])-1.5*(d8[4]-d8[2])) > 1e-9 {
		t.Errorf("spread 1.5 moves the 0.95 quantile %.4f from the median, want 1.5 × %.4f", d[4]-d[2], d8[4]-d8[2])
	}
}
