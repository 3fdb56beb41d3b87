package gtt

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Calendar is the time axis of a series with timestamps: a regular step
// from a known last time. It derives the time-feature channels (sin and cos
// of the time of day, the day of the week and the position in the year) that
// the model reads beside the values when timestamps are given.
type Calendar struct {
	// Step is the spacing of the steps.
	Step time.Duration
	// Monthly, when set, steps by calendar months instead of Step (and
	// Yearly by calendar years), since months differ in length.
	Monthly, Yearly bool
	// features lists the calendar periods that vary at this step.
	features []calendarFeature
}

type calendarFeature uint8

const (
	featureDay calendarFeature = iota
	featureWeek
	featureYear
)

var featurePeriods = [...]time.Duration{
	featureDay:  24 * time.Hour,
	featureWeek: 7 * 24 * time.Hour,
	featureYear: time.Duration(365.2425 * 24 * float64(time.Hour)),
}

// NewCalendar infers the step of ts (the median spacing, recognising
// calendar months and years) and chooses the features whose period spans at
// least two steps and at most context steps, so that each one both varies
// and completes a cycle in the window the model reads.
func NewCalendar(ts []time.Time, context int) (Calendar, error) {
	if len(ts) < 2 {
		return Calendar{}, fmt.Errorf("time features: need at least 2 timestamps, have %d", len(ts))
	}
	diffs := make([]time.Duration, len(ts)-1)
	for i := range diffs {
		diffs[i] = ts[i+1].Sub(ts[i])
		if diffs[i] <= 0 {
			return Calendar{}, fmt.Errorf("time features: timestamps %d and %d are not increasing (%s, %s)", i, i+1, ts[i].Format(time.RFC3339), ts[i+1].Format(time.RFC3339))
		}
	}
	slices.Sort(diffs)
	step := diffs[len(diffs)/2]
	cal := Calendar{Step: step}
	day := 24 * time.Hour
	switch {
	case step >= 28*day && step <= 31*day:
		cal.Monthly = true
	case step >= 365*day && step <= 366*day:
		cal.Yearly = true
	}
	for f, p := range featurePeriods {
		if p >= 2*step && p <= time.Duration(context)*step {
			cal.features = append(cal.features, calendarFeature(f))
		}
	}
	return cal, nil
}

// Channels returns the number of feature channels (two per feature).
func (c Calendar) Channels() int { return 2 * len(c.features) }

// After returns the time k steps after t.
func (c Calendar) After(t time.Time, k int) time.Time {
	switch {
	case c.Monthly:
		return t.AddDate(0, k, 0)
	case c.Yearly:
		return t.AddDate(k, 0, 0)
	}
	return t.Add(time.Duration(k) * c.Step)
}

// Fill writes the feature channels of the times ts into dst
// (Channels() slices, each at least len(ts) long).
func (c Calendar) Fill(dst [][]float32, ts []time.Time) {
	for i, t := range ts {
		for j, f := range c.features {
			a := 2 * math.Pi * phase(t, f)
			dst[2*j][i] = float32(math.Sin(a))
			dst[2*j+1][i] = float32(math.Cos(a))
		}
	}
}

// phase returns t's position in the feature's cycle, in [0, 1).
func phase(t time.Time, f calendarFeature) float64 {
	secs := float64(t.Hour()*3600+t.Minute()*60+t.Second()) + float64(t.Nanosecond())/1e9
	dayFrac := secs / 86400
	switch f {
	case featureDay:
		return dayFrac
	case featureWeek:
		return (float64((int(t.Weekday())+6)%7) + dayFrac) / 7 // Monday = 0
	}
	days := 365.0
	if y := t.Year(); y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 366
	}
	return (float64(t.YearDay()-1) + dayFrac) / days
}
