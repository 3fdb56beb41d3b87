package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustNew(t testing.TB, p Params) *Sampler {
	t.Helper()
	s, err := New(p)
	if err != nil {
		t.Fatalf("New(%+v): %v", p, err)
	}
	return s
}

func mustSample(t testing.TB, s *Sampler, logits []float32, history []int32) int32 {
	t.Helper()
	id, err := s.Sample(logits, history)
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	return id
}

// plainParams samples from the untouched softmax at temperature temp with a
// fixed seed: no top-k, top-p, min-p or penalties.
func plainParams(temp float32) Params {
	return Params{Temperature: temp, TopP: 1, RepeatPenalty: 1, RepeatLastN: 64, Seed: 1}
}

// randomRow returns n logits spread like a language model's: a normal bulk
// with a few strong candidates.
func randomRow(r *rand.Rand, n int) []float32 {
	row := make([]float32, n)
	for i := range row {
		row[i] = float32(r.NormFloat64() * 2.5)
	}
	for range 5 {
		row[r.IntN(n)] += 8 + float32(r.Float64()*6)
	}
	return row
}

// firstArgmax is the reference greedy choice: the first maximal logit.
func firstArgmax(row []float32) int32 {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return int32(best)
}

// softmax returns the softmax of row/temp in float64.
func softmax(row []float32, temp float64) []float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = max(m, float64(v)/temp)
	}
	p := make([]float64, len(row))
	var z float64
	for i, v := range row {
		p[i] = math.Exp(float64(v)/temp - m)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
	return p
}

func TestGreedyIsArgmax(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := DefaultParams()
	p.Temperature = 0
	s := mustNew(t, p)
	for range 100 {
		row := randomRow(r, 1000)
		want := firstArgmax(row)
		if got := mustSample(t, s, row, nil); got != want {
			t.Fatalf("greedy chose %d, argmax is %d", got, want)
		}
	}
	fixed := []struct {
		row  []float32
		want int32
	}{
		{[]float32{1, 5, 5, 2}, 1},
		{[]float32{7}, 0},
		{[]float32{float32(math.NaN()), 1, 3, float32(math.NaN())}, 2},
		{[]float32{float32(math.Inf(-1)), -1e30, float32(math.Inf(-1))}, 1},
	}
	for _, f := range fixed {
		if got := mustSample(t, s, slices.Clone(f.row), nil); got != f.want {
			t.Errorf("greedy on %v chose %d, want %d", f.row, got, f.want)
		}
	}
}

func TestTopKOneIsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p := plainParams(1.5)
	p.TopK = 1
	s := mustNew(t, p)
	for range 100 {
		row := randomRow(r, 500)
		if got, want := mustSample(t, s, row, nil), firstArgmax(row); got != want {
			t.Fatalf("top-k 1 chose %d, argmax is %d", got, want)
		}
	}
	if got := mustSample(t, s, []float32{0, 4, 1, 4}, nil); got != 1 {
		t.Errorf("top-k 1 on a tie chose %d, want the lower id 1", got)
	}
}

func TestTinyTopPIsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, topK := range []int{0, 40} {
		p := plainParams(1)
		p.TopK, p.TopP = topK, 1e-6
		s := mustNew(t, p)
		for range 100 {
			row := randomRow(r, 2000)
			if got, want := mustSample(t, s, row, nil), firstArgmax(row); got != want {
				t.Fatalf("top-k %d, top-p 1e-6 chose %d, argmax is %d", topK, got, want)
			}
		}
		if got := mustSample(t, s, []float32{0, 4, 1, 4}, nil); got != 1 {
			t.Errorf("top-k %d, top-p 1e-6 on a tie chose %d, want the lower id 1", topK, got)
		}
	}
}

func TestLogitBiasBansAndForces(t *testing.T) {
	row := []float32{1, 2, 0.5, 6, 3}

	p := DefaultParams()
	p.Temperature = 0
	p.LogitBias = map[int32]float32{3: -100}
	s := mustNew(t, p)
	logits := slices.Clone(row)
	if got := mustSample(t, s, logits, nil); got != 4 {
		t.Errorf("greedy with token 3 banned chose %d, want 4", got)
	}
	if logits[3] != row[3]-100 {
		t.Errorf("biased logit of token 3 = %v, want %v (bias is applied in place)", logits[3], row[3]-100)
	}

	p = plainParams(2)
	p.LogitBias = map[int32]float32{3: -100, 0: float32(math.Inf(-1))}
	s = mustNew(t, p)
	for range 2000 {
		if got := mustSample(t, s, slices.Clone(row), nil); got == 3 || got == 0 {
			t.Fatalf("sampling chose banned token %d", got)
		}
	}

	p.LogitBias = map[int32]float32{2: 100}
	s = mustNew(t, p)
	for range 200 {
		if got := mustSample(t, s, slices.Clone(row), nil); got != 2 {
			t.Fatalf("sampling with token 2 biased by +100 chose %d", got)
		}
	}
}

func TestPenaltiesFollowLlamaCppAndOpenAI(t *testing.T) {
	row := []float32{2, -2, 1, 0.5, 3, 0}
	history := []int32{2, 0, 1, 0, 3, 4, 5}
	p := DefaultParams()
	p.Temperature = 0
	p.RepeatPenalty, p.PresencePenalty, p.FrequencyPenalty = 2, 0.5, 0.25
	p.RepeatLastN = 6 // the window drops the leading 2

	logits := slices.Clone(row)
	got := mustSample(t, mustNew(t, p), logits, history)
	want := []float32{
		2/2.0 - 2*0.25 - 0.5, // twice, positive: divided
		-2*2.0 - 0.25 - 0.5,  // once, negative: multiplied
		1,                    // outside the window
		0.5/2.0 - 0.25 - 0.5, // once
		3/2.0 - 0.25 - 0.5,   // once
		0*2.0 - 0.25 - 0.5,   // once, zero stays zero under the repetition penalty
	}
	if !slices.Equal(logits, want) {
		t.Errorf("penalized logits = %v, want %v", logits, want)
	}
	if got != 2 {
		t.Errorf("greedy after penalties chose %d, want 2 (token 4 led before)", got)
	}

	p.RepeatLastN = -1
	logits = slices.Clone(row)
	mustSample(t, mustNew(t, p), logits, history)
	if w := float32(1/2.0 - 0.25 - 0.5); logits[2] != w {
		t.Errorf("with repeat_last_n -1, logit of token 2 = %v, want %v", logits[2], w)
	}

	p.RepeatLastN = 0
	logits = slices.Clone(row)
	if got := mustSample(t, mustNew(t, p), logits, history); got != 4 || !slices.Equal(logits, row) {
		t.Errorf("with repeat_last_n 0: chose %d with logits %v, want 4 and %v unchanged", got, logits, row)
	}
}

func TestTopKKeepsOnlyTheKBest(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	row := randomRow(r, 300)
	order := make([]int32, len(row))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		return byLikelihood(candidate{id: a, logit: row[a]}, candidate{id: b, logit: row[b]})
	})
	best := order[:5]

	p := plainParams(4) // hot enough that all five get drawn
	p.TopK = 5
	s := mustNew(t, p)
	seen := map[int32]int{}
	for range 5000 {
		seen[mustSample(t, s, row, nil)]++
	}
	for id := range seen {
		if !slices.Contains(best, id) {
			t.Fatalf("top-k 5 chose token %d, not among the best five %v", id, best)
		}
	}
	for _, id := range best {
		if seen[id] == 0 {
			t.Errorf("top-k 5 never chose token %d of the best five %v (counts %v)", id, best, seen)
		}
	}
}

func TestTopPKeepsTheNucleus(t *testing.T) {
	// Probabilities 0.5, 0.25, 0.15, 0.1: top-p 0.7 keeps the first two,
	// which then share the mass 2:1.
	row := []float32{float32(math.Log(0.5)), float32(math.Log(0.25)), float32(math.Log(0.15)), float32(math.Log(0.1))}
	for _, topK := range []int{0, 3} {
		p := plainParams(1)
		p.TopK, p.TopP = topK, 0.7
		s := mustNew(t, p)
		const n = 30000
		var counts [4]int
		for range n {
			counts[mustSample(t, s, row, nil)]++
		}
		if counts[2] != 0 || counts[3] != 0 {
			t.Fatalf("top-k %d, top-p 0.7 chose tokens outside the nucleus: counts %v", topK, counts)
		}
		checkFrequency(t, counts[0], n, 2.0/3)
	}
}

// checkFrequency fails when count out of n draws is more than five standard
// deviations from n*p.
func checkFrequency(t *testing.T, count, n int, p float64) {
	t.Helper()
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if math.Abs(float64(count)-mean) > 5*sd+1e-9 {
		t.Errorf("drew %d of %d, want %.1f ± %.1f (p=%.4f)", count, n, mean, 5*sd, p)
	}
}

// TestTopPRowMatchesFullSort checks the histogram shortcut against the
// definition: sort the whole row, keep the shortest prefix whose mass
// reaches p.
func TestTopPRowMatchesFullSort(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var hist [histBuckets]float64
	for trial := range 60 {
		n := 50 + r.IntN(5000)
		row := make([]float32, n)
		spread := []float64{0.01, 0.5, 2.5, 8}[trial%4]
		for i := range row {
			row[i] = float32(r.NormFloat64() * spread)
		}
		if trial%3 == 0 {
			row[r.IntN(n)] = float32(math.Inf(-1))
			row[r.IntN(n)] = float32(math.NaN())
		}
		m := row[argmax(row)]
		for _, topP := range []float32{0.01, 0.5, 0.9, 0.95, 0.999} {
			got, _, z := topPRow(nil, nil, &hist, row, m, topP)

			all := make([]candidate, 0, n)
			var wantZ float64
			for i, v := range row {
				w := expf(v - m)
				wantZ += float64(w)
				if v == v {
					all = append(all, candidate{id: int32(i), logit: v, w: w})
				}
			}
			slices.SortFunc(all, byLikelihood)
			want := nucleus(all, float64(topP)*wantZ)

			if math.Abs(z-wantZ) > 1e-9*wantZ {
				t.Fatalf("trial %d top-p %v: denominator %v, want %v", trial, topP, z, wantZ)
			}
			if len(got) != len(want) {
				t.Fatalf("trial %d (n=%d spread %v) top-p %v: kept %d tokens, full sort keeps %d", trial, n, spread, topP, len(got), len(want))
			}
			wantIDs := make([]int32, len(want))
			for i, c := range want {
				wantIDs[i] = c.id
			}
			slices.Sort(wantIDs)
			for i := range got {
				if got[i].id != wantIDs[i] {
					t.Fatalf("trial %d top-p %v: token %d of the nucleus is %d, want %d", trial, topP, i, got[i].id, wantIDs[i])
				}
			}
		}
	}
}

func TestMinPFilters(t *testing.T) {
	// Relative to the best token: 0.2 (kept at min-p 0.1) and 0.04 (dropped).
	row := []float32{0, float32(math.Log(0.2)), float32(math.Log(0.04)), -20}
	for _, tc := range []struct {
		topK int
		topP float32
	}{{0, 1}, {3, 1}, {0, 0.9999}} {
		p := plainParams(1)
		p.TopK, p.TopP, p.MinP = tc.topK, tc.topP, 0.1
		s := mustNew(t, p)
		const n = 20000
		var counts [4]int
		for range n {
			counts[mustSample(t, s, row, nil)]++
		}
		if counts[2] != 0 || counts[3] != 0 {
			t.Fatalf("top-k %d top-p %v min-p 0.1 chose filtered tokens: counts %v", tc.topK, tc.topP, counts)
		}
		checkFrequency(t, counts[1], n, 0.2/1.2)
	}
}

func TestSeedsMakeSequencesReproducible(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	rows := make([][]float32, 200)
	for i := range rows {
		rows[i] = randomRow(r, 64)
	}
	run := func(seed int64) ([]int32, int64) {
		p := DefaultParams()
		p.Temperature, p.Seed = 1.5, seed
		s := mustNew(t, p)
		var out []int32
		for _, row := range rows {
			out = append(out, mustSample(t, s, slices.Clone(row), out))
		}
		return out, s.Seed()
	}
	a, _ := run(42)
	b, _ := run(42)
	if !slices.Equal(a, b) {
		t.Fatal("two samplers with seed 42 chose different sequences")
	}
	c, _ := run(43)
	if slices.Equal(a, c) {
		t.Fatal("seeds 42 and 43 chose the same sequence of 200 tokens")
	}
	z1, _ := run(0)
	z2, _ := run(0)
	if !slices.Equal(z1, z2) {
		t.Fatal("seed 0 is not reproducible")
	}

	x, seedX := run(-1)
	y, seedY := run(-1)
	if seedX < 0 || seedY < 0 || seedX == seedY {
		t.Fatalf("random seeds %d and %d: want two different non-negative seeds", seedX, seedY)
	}
	if slices.Equal(x, y) {
		t.Fatal("two randomly seeded samplers chose the same sequence of 200 tokens")
	}
	replay, _ := run(seedX)
	if !slices.Equal(x, replay) {
		t.Fatal("replaying the reported random seed chose a different sequence")
	}
}

// TestEmpiricalDistributionMatchesSoftmax draws many tokens with a fixed
// seed and compares the frequencies with the softmax, through the
// whole-row path and the candidate path.
func TestEmpiricalDistributionMatchesSoftmax(t *testing.T) {
	row := []float32{1, 0.5, 0, -0.5, -1, 2, -3}
	cases := []struct {
		name string
		temp float32
		topK int
		want []float64
	}{
		{"temperature 1", 1, 0, softmax(row, 1)},
		{"temperature 0.5", 0.5, 0, softmax(row, 0.5)},
		{"temperature 2", 2, 0, softmax(row, 2)},
		{"top-k 4 at temperature 1", 1, 4, softmax([]float32{1, 0.5, 0, math.MinInt32, math.MinInt32, 2, math.MinInt32}, 1)},
		{"top-k 4 at temperature 0.5", 0.5, 4, softmax([]float32{1, 0.5, 0, math.MinInt32, math.MinInt32, 2, math.MinInt32}, 0.5)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := plainParams(tc.temp)
			p.TopK, p.Seed = tc.topK, 7
			s := mustNew(t, p)
			const n = 100000
			counts := make([]int, len(row))
			for range n {
				counts[mustSample(t, s, row, nil)]++
			}
			for id, want := range tc.want {
				if want < 1e-9 {
					if counts[id] != 0 {
						t.Errorf("token %d has probability 0 but was drawn %d times", id, counts[id])
					}
					continue
				}
				checkFrequency(t, counts[id], n, want)
			}
		})
	}
}

func TestLogprobs(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	variants := []struct {
		name   string
		change func(*Params)
	}{
		{"greedy", func(p *Params) { p.Temperature = 0 }},
		{"defaults", func(p *Params) {}},
		{"top-p over the row", func(p *Params) { p.TopK, p.MinP = 0, 0 }},
		{"temperature 1 over the row", func(p *Params) { p.Temperature, p.TopK, p.TopP, p.MinP = 1, 0, 1, 0 }},
		{"min-p over the row", func(p *Params) { p.Temperature, p.TopK, p.TopP = 0.7, 0, 1 }},
	}
	for _, v := range variants {
		for _, raw := range []bool{false, true} {
			p := DefaultParams()
			p.Seed, p.Logprobs, p.TopLogprobs, p.RawLogprobs = 3, true, 5, raw
			p.RepeatPenalty, p.PresencePenalty = 1.3, 0.4
			v.change(&p)
			row := randomRow(r, 3000)
			top := firstArgmax(row)
			p.LogitBias = map[int32]float32{top: -30, 17: 2}
			s := mustNew(t, p)

			logits := slices.Clone(row)
			history := []int32{top, 5, 5, 99}
			id := mustSample(t, s, logits, history)
			chosen, alts, ok := s.Logprobs()
			if !ok {
				t.Fatalf("%s raw=%v: Logprobs reported nothing", v.name, raw)
			}

			ref := logits // after bias and penalties
			if raw {
				ref = row
			}
			lp := softmax(ref, 1)
			if chosen.ID != id || math.Abs(float64(chosen.Logprob)-math.Log(lp[id])) > 1e-4 {
				t.Errorf("%s raw=%v: chosen %+v, want token %d with %v", v.name, raw, chosen, id, math.Log(lp[id]))
			}
			order := make([]int32, len(ref))
			for i := range order {
				order[i] = int32(i)
			}
			slices.SortFunc(order, func(a, b int32) int {
				return byLikelihood(candidate{id: a, logit: ref[a]}, candidate{id: b, logit: ref[b]})
			})
			if len(alts) != 5 {
				t.Fatalf("%s raw=%v: %d alternatives, want 5", v.name, raw, len(alts))
			}
			for i, a := range alts {
				if a.ID != order[i] || math.Abs(float64(a.Logprob)-math.Log(lp[a.ID])) > 1e-4 {
					t.Errorf("%s raw=%v: alternative %d is %+v, want token %d with %v", v.name, raw, i, a, order[i], math.Log(lp[order[i]]))
				}
			}
			if raw != (alts[0].ID == top) {
				t.Errorf("%s raw=%v: the banned token %d leads the alternatives: %v", v.name, raw, top, alts[0].ID == top)
			}
		}
	}

	s := mustNew(t, DefaultParams())
	mustSample(t, s, []float32{1, 2, 3}, nil)
	if _, _, ok := s.Logprobs(); ok {
		t.Error("Logprobs reported values with Params.Logprobs off")
	}
	p := DefaultParams()
	p.Logprobs = true
	s = mustNew(t, p)
	mustSample(t, s, []float32{1, 2, 3}, nil)
	if c, top, ok := s.Logprobs(); !ok || len(top) != 0 || c.Logprob > 0 {
		t.Errorf("Logprobs() = %+v, %v, %v; want a chosen log-probability <= 0 and no alternatives", c, top, ok)
	}
	if _, err := s.Sample(nil, nil); err == nil {
		t.Fatal("Sample(nil) succeeded")
	}
	if _, _, ok := s.Logprobs(); ok {
		t.Error("Logprobs reported values after a failed Sample")
	}
}

func TestSampleRejectsBadInput(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	penalized := DefaultParams()
	penalized.RepeatPenalty = 1.1
	biased := DefaultParams()
	biased.LogitBias = map[int32]float32{3: 1}
	greedy := DefaultParams()
	greedy.Temperature = 0
	cases := []struct {
		name    string
		p       Params
		logits  []float32
		history []int32
	}{
		{"empty row", DefaultParams(), nil, nil},
		{"bias outside the row", biased, []float32{1, 2, 3}, nil},
		{"history token outside the row", penalized, []float32{1, 2, 3}, []int32{0, 3}},
		{"negative history token", penalized, []float32{1, 2, 3}, []int32{-1, 2}},
		{"all -Inf", DefaultParams(), []float32{-inf, -inf}, nil},
		{"all NaN", DefaultParams(), []float32{nan, nan, nan}, nil},
		{"all NaN, greedy", greedy, []float32{nan, nan}, nil},
		{"+Inf logit", DefaultParams(), []float32{0, inf, 1}, nil},
		{"+Inf logit, whole row", plainParams(1), []float32{0, inf, 1}, nil},
		{"+Inf logit, greedy", greedy, []float32{0, inf, 1}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.p)
			if id, err := s.Sample(tc.logits, tc.history); err == nil {
				t.Fatalf("Sample chose %d, want an error", id)
			}
		})
	}
	// Without penalties the history is not read.
	if _, err := mustNew(t, DefaultParams()).Sample([]float32{1, 2}, []int32{-5, 99}); err != nil {
		t.Errorf("Sample with penalties off read the history: %v", err)
	}
}

func TestSampleDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	row := randomRow(r, 32000)
	history := make([]int32, 128)
	for i := range history {
		history[i] = int32(r.IntN(32000))
	}
	for name, change := range map[string]func(*Params){
		"defaults":         func(p *Params) {},
		"greedy":           func(p *Params) { p.Temperature = 0 },
		"top-p only":       func(p *Params) { p.TopK, p.MinP = 0, 0 },
		"min-p only":       func(p *Params) { p.TopK, p.TopP = 0, 1 },
		"temperature only": func(p *Params) { p.TopK, p.TopP, p.MinP = 0, 1, 0 },
		"penalties and bias": func(p *Params) {
			p.RepeatPenalty, p.FrequencyPenalty, p.LogitBias = 1.1, 0.2, map[int32]float32{5: 3, 9: -100}
		},
		"logprobs":     func(p *Params) { p.Logprobs, p.TopLogprobs = true, 20 },
		"raw logprobs": func(p *Params) { p.Logprobs, p.TopLogprobs, p.RawLogprobs, p.RepeatPenalty = true, 20, true, 1.1 },
	} {
		p := DefaultParams()
		p.Seed = 1
		change(&p)
		s := mustNew(t, p)
		logits := slices.Clone(row)
		allocs := testing.AllocsPerRun(20, func() {
			copy(logits, row)
			mustSample(t, s, logits, history)
		})
		if allocs != 0 {
			t.Errorf("%s: Sample allocates %v times per call", name, allocs)
		}
	}
}
