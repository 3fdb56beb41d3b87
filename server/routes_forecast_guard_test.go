package server

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// randomWalkJSON returns n steps of a Gaussian random walk from 100 as a
// JSON list, and its last value as the server reads it.
func randomWalkJSON(n int, seed uint64) (string, float32) {
	r := rand.New(rand.NewPCG(seed, 2))
	v := make([]string, n)
	x := 100.0
	for i := range v {
		x += r.NormFloat64()
		v[i] = strconv.FormatFloat(float64(float32(x)), 'g', -1, 32)
	}
	last, _ := strconv.ParseFloat(v[n-1], 32)
	return "[" + strings.Join(v, ",") + "]", float32(last)
}

// TestForecastGuardField sends one random walk with "guard" "auto" (and
// absent) and "off", concurrently so that the batcher could merge them:
// auto answers the walk's last value at every step, off the network's
// forecast, which does not.
func TestForecastGuardField(t *testing.T) {
	s := forecastServer(t, nil)
	walk, last := randomWalkJSON(1024, 11)
	const horizon = 96
	body := func(guard string) string {
		return `{"model":"gtt-small","horizon":` + strconv.Itoa(horizon) + guard + `,"series":[{"target":` + walk + `}]}`
	}
	guards := []string{``, `,"guard":"auto"`, `,"guard":null`, `,"guard":"off"`, `,"guard":"off"`, `,"guard":"auto"`}
	means := make([][]float64, len(guards))
	var wg sync.WaitGroup
	for i, g := range guards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.post(t, "/v1/forecast", body(g))
			if r.status != http.StatusOK {
				t.Errorf("guard %q: %d %s", g, r.status, r.body)
				return
			}
			var out forecastReply
			r.json(t, &out)
			means[i] = floats(t, out.Forecasts[0].Mean)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, g := range guards {
		if len(means[i]) != horizon {
			t.Fatalf("guard %q: %d steps, want %d", g, len(means[i]), horizon)
		}
		naive := 0
		for _, v := range means[i] {
			if float32(v) == last {
				naive++
			}
		}
		off := strings.Contains(g, "off")
		switch {
		case !off && naive != horizon:
			t.Errorf("guard %q: %d of %d steps are the last value %v: %v", g, naive, horizon, last, means[i][:4])
		case off && naive == horizon:
			t.Errorf("guard %q: every step is the last value %v, the naive forecast", g, last)
		}
	}
	if fmt.Sprint(means[3]) != fmt.Sprint(means[4]) {
		t.Error("two off requests answered differently")
	}

	// A bad value is a 400 naming the field and the allowed values.
	for _, g := range []string{`"never"`, `1`, `""`} {
		r := s.post(t, "/v1/forecast", body(`,"guard":`+g))
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"param":"guard"`) ||
			!strings.Contains(string(r.body), `\"walk\"`) {
			t.Errorf("guard %s: %d %s", g, r.status, r.body)
		}
	}
}
