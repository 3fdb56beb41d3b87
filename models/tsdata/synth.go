package tsdata

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"time"
)

// Synthetic is one generated multivariate series.
type Synthetic struct {
	// Series holds the channels, all of the same length.
	Series [][]float64
	// Times holds the time of each step when the series follows a
	// calendar (its seasonal cycles then line up with the time of day,
	// week or year), or nil.
	Times []time.Time
}

// synthCalendar is a sampling frequency and the calendar cycles it shows.
type synthCalendar struct {
	step    time.Duration
	monthly bool
	cycles  []cycleKind
}

type cycleKind uint8

const (
	cycleDay cycleKind = iota
	cycleWeek
	cycleYear
)

var synthCalendars = []synthCalendar{
	{step: 10 * time.Minute, cycles: []cycleKind{cycleDay, cycleWeek}},
	{step: 15 * time.Minute, cycles: []cycleKind{cycleDay, cycleWeek}},
	{step: 30 * time.Minute, cycles: []cycleKind{cycleDay, cycleWeek}},
	{step: time.Hour, cycles: []cycleKind{cycleDay, cycleWeek}},
	{step: 24 * time.Hour, cycles: []cycleKind{cycleWeek, cycleYear}},
	{step: 7 * 24 * time.Hour, cycles: []cycleKind{cycleYear}},
	{monthly: true, cycles: []cycleKind{cycleYear}},
}

// period returns the length of cycle k in steps of c.
func (c synthCalendar) period(k cycleKind) float64 {
	if c.monthly {
		return 12
	}
	var d time.Duration
	switch k {
	case cycleDay:
		d = 24 * time.Hour
	case cycleWeek:
		d = 7 * 24 * time.Hour
	default:
		d = time.Duration(365.2425 * 24 * float64(time.Hour))
	}
	return float64(d) / float64(c.step)
}

// cyclePhase returns t's position in cycle k, in [0, 1): time of day, day
// of the week from Monday, day of the year.
func cyclePhase(t time.Time, k cycleKind) float64 {
	dayFrac := float64(t.Hour()*3600+t.Minute()*60+t.Second()) / 86400
	switch k {
	case cycleDay:
		return dayFrac
	case cycleWeek:
		return (float64((int(t.Weekday())+6)%7) + dayFrac) / 7
	}
	days := 365.0
	if y := t.Year(); y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 366
	}
	return (float64(t.YearDay()-1) + dayFrac) / days
}

// Synthesize draws one series of the given length and number of channels
// from a mix of generators: trends, one to three seasonalities (calendar
// aligned when the series has timestamps), autoregressive noise, random
// walks, level shifts, spikes, intermittent demand and Gaussian-process-like
// samples of composed kernels. Several channels mix shared latent factors
// (with lags) and channel-specific parts.
func Synthesize(rng *rand.Rand, length, channels int) Synthetic {
	length = max(length, 2)
	channels = max(channels, 1)
	var cal *synthCalendar
	var out Synthetic
	if rng.Float64() < 0.6 {
		c := synthCalendars[rng.IntN(len(synthCalendars))]
		cal = &c
		start := time.Date(1990+rng.IntN(35), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		if !c.monthly && c.step < 24*time.Hour {
			start = start.Add(time.Duration(rng.IntN(int(24*time.Hour/c.step))) * c.step)
		}
		out.Times = make([]time.Time, length)
		for i := range out.Times {
			if c.monthly {
				out.Times[i] = start.AddDate(0, i, 0)
			} else {
				out.Times[i] = start.Add(time.Duration(i) * c.step)
			}
		}
	}
	g := synthGen{rng: rng, n: length, cal: cal, times: out.Times}
	if channels == 1 {
		out.Series = [][]float64{g.univariate()}
		return out
	}
	out.Series = g.multivariate(channels)
	return out
}

type synthGen struct {
	rng   *rand.Rand
	n     int
	cal   *synthCalendar
	times []time.Time
}

func (g *synthGen) logUniform(lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + g.rng.Float64()*(math.Log(hi)-math.Log(lo)))
}

// univariate draws one channel.
func (g *synthGen) univariate() []float64 {
	var x []float64
	switch r := g.rng.Float64(); {
	case r < 0.42:
		x = g.structural()
	case r < 0.70:
		x = g.kernelSample()
	case r < 0.95:
		x = g.walk()
	default:
		x = g.intermittent()
	}
	if g.rng.Float64() < 0.1 {
		// A series that cannot go below zero.
		lo := quantile(x, 0.1+0.2*g.rng.Float64())
		for i := range x {
			x[i] = math.Max(0, x[i]-lo)
		}
	}
	return x
}

// structural is trend + seasonalities + noise, with optional level shifts
// and spikes, added or (sometimes) multiplied.
func (g *synthGen) structural() []float64 {
	n := g.n
	trend := g.trend(g.logUniform(0.05, 2))
	season := make([]float64, n)
	ns := []int{0, 1, 1, 1, 2, 2, 3}[g.rng.IntN(7)]
	for s := 0; s < ns; s++ {
		add(season, g.seasonal(g.logUniform(0.2, 2)))
	}
	noise := g.arNoise(g.logUniform(0.01, 1))
	x := make([]float64, n)
	if g.rng.Float64() < 0.2 {
		// Multiplicative seasonality on a positive level.
		lvl := 2 + g.rng.Float64()*3
		for i := range x {
			x[i] = (lvl + trend[i]) * (1 + 0.15*season[i])
		}
		add(x, noise)
	} else {
		for i := range x {
			x[i] = trend[i] + season[i] + noise[i]
		}
	}
	if g.rng.Float64() < 0.15 {
		g.levelShifts(x, g.logUniform(0.3, 3))
	}
	if g.rng.Float64() < 0.1 {
		g.spikes(x, g.logUniform(2, 8))
	}
	return x
}

// trend draws a linear, piecewise linear, exponential or logistic trend
// spanning about amp over the series, or (half the time) nothing: real
// series rarely keep one trend for long, and a model that learns to
// extrapolate every trend drifts on random walks.
func (g *synthGen) trend(amp float64) []float64 {
	n := g.n
	x := make([]float64, n)
	sign := 1.0
	if g.rng.IntN(2) == 0 {
		sign = -1
	}
	switch g.rng.IntN(8) {
	case 0, 1, 6, 7: // none
	case 2:
		for i := range x {
			x[i] = sign * amp * float64(i) / float64(n)
		}
	case 3:
		k := 1 + g.rng.IntN(4)
		slope := g.rng.NormFloat64() * amp / float64(n)
		change := map[int]float64{}
		for j := 0; j < k; j++ {
			change[g.rng.IntN(n)] = g.rng.NormFloat64() * amp / float64(n)
		}
		v := 0.0
		for i := range x {
			slope += change[i]
			v += slope
			x[i] = v
		}
	case 4:
		r := (g.rng.Float64()*4 - 2)
		for i := range x {
			x[i] = amp * math.Exp(r*float64(i)/float64(n)) / math.Max(1, math.Exp(r))
		}
	case 5:
		mid := g.rng.Float64() * float64(n)
		w := g.logUniform(0.02, 0.3) * float64(n)
		for i := range x {
			x[i] = sign * amp / (1 + math.Exp(-(float64(i)-mid)/w))
		}
	}
	return x
}

// seasonal draws a periodic component of about the given amplitude: a
// Fourier series with decaying harmonics, or a repeated random profile,
// sometimes with a slowly varying amplitude. With a calendar it follows
// one of the calendar's cycles in phase with the timestamps.
func (g *synthGen) seasonal(amp float64) []float64 {
	n := g.n
	var period, phase0 float64
	if g.cal != nil && g.rng.Float64() < 0.8 {
		k := g.cal.cycles[g.rng.IntN(len(g.cal.cycles))]
		period = g.cal.period(k)
		phase0 = cyclePhase(g.times[0], k)
	} else {
		period = g.logUniform(2.5, 500)
		if g.rng.Float64() < 0.5 {
			period = math.Round(period)
		}
		phase0 = g.rng.Float64()
	}
	x := make([]float64, n)
	if period >= 3 && period <= 64 && g.rng.Float64() < 0.3 {
		// A random profile over one period, repeated.
		p := int(math.Round(period))
		prof := make([]float64, p)
		for i := range prof {
			prof[i] = g.rng.NormFloat64()
		}
		off := int(phase0 * float64(p))
		for i := range x {
			x[i] = amp * prof[(i+off)%p]
		}
	} else {
		k := 1 + g.rng.IntN(min(8, max(1, int(period/2))))
		decay := 0.5 + 1.5*g.rng.Float64()
		for h := 1; h <= k; h++ {
			a := g.rng.NormFloat64() / math.Pow(float64(h), decay)
			ph := g.rng.Float64() * 2 * math.Pi
			w := 2 * math.Pi * float64(h) / period
			rot := cmplx.Rect(1, w)
			z := cmplx.Rect(a, ph+2*math.Pi*float64(h)*phase0)
			for i := range x {
				x[i] += amp * imag(z)
				z *= rot
			}
		}
	}
	if g.rng.Float64() < 0.2 {
		mod := g.rbf(g.logUniform(0.1, 1)*float64(n), 32)
		for i := range x {
			x[i] *= 1 + 0.4*mod[i]
		}
	}
	return x
}

// arNoise is AR(1) noise with a random coefficient and the given
// innovation deviation, sometimes heavy-tailed.
func (g *synthGen) arNoise(sd float64) []float64 {
	phi := g.rng.Float64() * 0.95
	heavy := g.rng.Float64() < 0.1
	x := make([]float64, g.n)
	v := 0.0
	for i := range x {
		e := g.rng.NormFloat64()
		if heavy {
			e /= math.Sqrt(math.Max(0.05, g.rng.ExpFloat64()))
		}
		v = phi*v + sd*e
		x[i] = v
	}
	return x
}

// walk is a random walk (with drift, sometimes geometric), an AR(1) near
// a unit root, or a mean-reverting walk, sometimes with a season.
func (g *synthGen) walk() []float64 {
	x := make([]float64, g.n)
	sd := 1.0
	drift := 0.0
	if g.rng.Float64() < 0.3 {
		drift = g.rng.NormFloat64() * 0.1
	}
	phi := 1.0
	switch g.rng.IntN(3) {
	case 1:
		phi = 1 - g.logUniform(0.001, 0.05)
	case 2:
		phi = 1 - g.logUniform(0.05, 0.3)
	}
	v := 0.0
	for i := range x {
		v = phi*v + drift + sd*g.rng.NormFloat64()
		x[i] = v
	}
	if g.rng.Float64() < 0.25 {
		s := std(x)
		for i := range x {
			x[i] = math.Exp(0.5 * x[i] / math.Max(s, 1e-9))
		}
	}
	if g.rng.Float64() < 0.3 {
		add(x, g.seasonal(std(x)*g.logUniform(0.1, 1)))
	}
	return x
}

// intermittent is sparse demand: mostly zeros, gamma-sized events.
func (g *synthGen) intermittent() []float64 {
	p := g.logUniform(0.05, 0.6)
	shape := 0.5 + 3*g.rng.Float64()
	x := make([]float64, g.n)
	for i := range x {
		if g.rng.Float64() < p {
			x[i] = math.Round(gammaSample(g.rng, shape)*5) + 1
		}
	}
	return x
}

// levelShifts adds one to three steps of about size amp·sd.
func (g *synthGen) levelShifts(x []float64, amp float64) {
	s := std(x)
	k := 1 + g.rng.IntN(3)
	for j := 0; j < k; j++ {
		at := g.rng.IntN(len(x))
		d := g.rng.NormFloat64() * amp * s
		for i := at; i < len(x); i++ {
			x[i] += d
		}
	}
}

// spikes adds sparse impulses of about amp·sd, some with a decaying tail.
func (g *synthGen) spikes(x []float64, amp float64) {
	s := std(x)
	p := g.logUniform(0.002, 0.02)
	tail := 0.0
	if g.rng.Float64() < 0.4 {
		tail = 0.3 + 0.6*g.rng.Float64()
	}
	for i := range x {
		if g.rng.Float64() < p {
			v := amp * s * (0.5 + g.rng.Float64())
			if g.rng.IntN(3) == 0 {
				v = -v
			}
			for j := i; j < len(x) && math.Abs(v) > 0.01*s; j++ {
				x[j] += v
				v *= tail
				if tail == 0 {
					break
				}
			}
		}
	}
}

// rbf draws a smooth sample of a Gaussian process with an RBF kernel of
// length scale ell (in steps) by m random Fourier features.
func (g *synthGen) rbf(ell float64, m int) []float64 {
	x := make([]float64, g.n)
	scale := math.Sqrt(2 / float64(m))
	for j := 0; j < m; j++ {
		w := g.rng.NormFloat64() / ell
		g.addCos(x, scale, w, g.rng.Float64()*2*math.Pi)
	}
	return x
}

// addCos adds a·cos(w·i + b) to x[i], by rotation.
func (g *synthGen) addCos(x []float64, a, w, b float64) {
	rot := cmplx.Rect(1, w)
	z := cmplx.Rect(a, b)
	for i := range x {
		x[i] += real(z)
		z *= rot
		if i&255 == 255 {
			z = cmplx.Rect(a, cmplx.Phase(z)) // keep the modulus exact
		}
	}
}

// kernelSample draws a Gaussian-process-like sample from a random
// composition of kernels: RBF, rational quadratic, periodic, linear,
// constant and white noise, combined by sums and products (a product of
// kernels is approximated by the product of independent samples).
func (g *synthGen) kernelSample() []float64 {
	x := g.kernelPart()
	k := g.rng.IntN(4)
	for j := 0; j < k; j++ {
		y := g.kernelPart()
		if g.rng.Float64() < 0.35 {
			for i := range x {
				x[i] *= y[i]
			}
		} else {
			add(x, y)
		}
	}
	return x
}

func (g *synthGen) kernelPart() []float64 {
	n := float64(g.n)
	switch g.rng.IntN(7) {
	case 0, 1: // RBF
		return g.rbf(g.logUniform(0.005, 0.5)*n, 48)
	case 2: // rational quadratic: a scale mixture of RBFs
		x := make([]float64, g.n)
		ell := g.logUniform(0.005, 0.3) * n
		alpha := g.logUniform(0.1, 5)
		for j := 0; j < 48; j++ {
			s := gammaSample(g.rng, alpha) / alpha
			w := g.rng.NormFloat64() / ell * math.Sqrt(s)
			g.addCos(x, math.Sqrt(2.0/48), w, g.rng.Float64()*2*math.Pi)
		}
		return x
	case 3, 4: // periodic
		return g.seasonal(1)
	case 5: // linear
		x := make([]float64, g.n)
		c := g.rng.Float64()
		s := g.rng.NormFloat64()
		for i := range x {
			x[i] = s * (float64(i)/n - c)
		}
		return x
	default: // white noise plus a constant
		x := make([]float64, g.n)
		sd := g.logUniform(0.05, 0.5)
		c := g.rng.NormFloat64()
		for i := range x {
			x[i] = c + sd*g.rng.NormFloat64()
		}
		return x
	}
}

// multivariate draws channels that mix one to three shared factors, each
// with its own loadings and lags, and a channel-specific part.
func (g *synthGen) multivariate(channels int) [][]float64 {
	n := g.n
	const maxLag = 12
	k := 1 + g.rng.IntN(3)
	long := &synthGen{rng: g.rng, n: n + maxLag, cal: g.cal}
	if g.times != nil {
		// The factors start maxLag steps early; keep their calendar phase.
		long.times = make([]time.Time, 1)
		long.times[0] = g.times[0].Add(-time.Duration(maxLag) * g.cal.step)
		if g.cal.monthly {
			long.times[0] = g.times[0].AddDate(0, -maxLag, 0)
		}
	}
	factors := make([][]float64, k)
	for j := range factors {
		factors[j] = standardize(long.univariate())
	}
	own := 0.1 + 0.9*g.rng.Float64()
	out := make([][]float64, channels)
	for c := range out {
		x := make([]float64, n)
		for j, f := range factors {
			if j > 0 && g.rng.Float64() < 0.3 {
				continue
			}
			l := g.rng.NormFloat64()
			lag := 0
			if g.rng.Float64() < 0.3 {
				lag = g.rng.IntN(maxLag + 1)
			}
			for i := range x {
				x[i] += l * f[i+maxLag-lag]
			}
		}
		if g.rng.Float64() < own {
			add(x, scaled(standardize(g.univariate()), own*g.rng.Float64()*2))
		}
		noise := g.logUniform(0.01, 0.5)
		for i := range x {
			x[i] += noise * g.rng.NormFloat64()
		}
		out[c] = x
	}
	return out
}

func add(x, y []float64) {
	for i := range x {
		x[i] += y[i]
	}
}

func scaled(x []float64, a float64) []float64 {
	for i := range x {
		x[i] *= a
	}
	return x
}

func std(x []float64) float64 {
	_, s, _ := meanStd(x)
	return s
}

func standardize(x []float64) []float64 {
	m, s, _ := meanStd(x)
	if s == 0 {
		s = 1
	}
	for i := range x {
		x[i] = (x[i] - m) / s
	}
	return x
}

// quantile returns the q-quantile of x (nearest rank).
func quantile(x []float64, q float64) float64 {
	s := append([]float64(nil), x...)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// gammaSample draws from Gamma(shape, 1) (Marsaglia and Tsang).
func gammaSample(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		return gammaSample(rng, shape+1) * math.Pow(rng.Float64(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}
