package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/go-hclog"

	"github.com/carryon/carryon/models/gtt"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/server/openai"
)

// Limits of /v1/forecast requests.
const (
	// maxForecastSeries bounds the series of one request.
	maxForecastSeries = 4096
	// maxSeriesSteps bounds the history of one series (the model reads
	// the last 1024 steps; longer histories only cost parsing).
	maxSeriesSteps = 100_000
	// minSeriesSteps is the shortest history accepted.
	minSeriesSteps = 16
	// maxForecastHorizon bounds the horizon (64 steps per model pass).
	maxForecastHorizon = 4096
	// maxSeriesChannels bounds target channels plus covariates of one
	// series.
	maxSeriesChannels = 512
	// maxQuantileLevels bounds the quantile levels of one request.
	maxQuantileLevels = 32
	// maxBatchItems bounds the series of one plugin call when requests
	// are merged.
	maxBatchItems = 2048
	// forecastCallTime bounds one plugin call; a call also ends when every
	// client whose series it carries has gone away.
	forecastCallTime = 10 * time.Minute
)

// forecastItem is one validated series of a request.
type forecastItem struct {
	name       string
	targets    int  // target channels; past covariates follow in item.Series
	twoD       bool // the target was given as [channels][steps]
	item       sdk.ForecastItem
	timestamps []time.Time
}

// forecastJob is a validated /v1/forecast request.
type forecastJob struct {
	model     string
	horizon   int
	frequency string
	quantiles []float64
	guard     string // a sdk.ForecastRequest.Guard value; "" for auto
	items     []forecastItem
	steps     int // history steps over all series and channels
}

// fieldErr is a 400 naming the offending field.
func fieldErr(code, param, format string, args ...any) *openai.Error {
	return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, code, param, fmt.Sprintf(format, args...))
}

// parseForecastRequest decodes and validates a /v1/forecast body. Every
// error names its field, such as series[2].target[17].
func parseForecastRequest(body []byte) (*forecastJob, *openai.Error) {
	var raw struct {
		Model     json.RawMessage `json:"model"`
		Series    json.RawMessage `json:"series"`
		Horizon   json.RawMessage `json:"horizon"`
		Frequency json.RawMessage `json:"frequency"`
		Quantiles json.RawMessage `json:"quantiles"`
		Guard     json.RawMessage `json:"guard"`
	}
	// One pass over a well-formed body splits every series into its
	// fields; anything else takes the field-by-field path, which names
	// what is wrong.
	var fast struct {
		Model     json.RawMessage `json:"model"`
		Series    []seriesFields  `json:"series"`
		Horizon   json.RawMessage `json:"horizon"`
		Frequency json.RawMessage `json:"frequency"`
		Quantiles json.RawMessage `json:"quantiles"`
		Guard     json.RawMessage `json:"guard"`
	}
	var split []seriesFields
	if err := json.Unmarshal(body, &fast); err == nil && len(fast.Series) > 0 {
		raw.Model, raw.Horizon, raw.Frequency, raw.Quantiles, raw.Guard = fast.Model, fast.Horizon, fast.Frequency, fast.Quantiles, fast.Guard
		raw.Series, split = json.RawMessage("[]"), fast.Series
	} else if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fieldErr(openai.CodeInvalidJSON, "", "The body is not a JSON object: %v.", err)
	}
	job := &forecastJob{}
	if isNull(raw.Model) {
		return nil, fieldErr(openai.CodeMissingParameter, "model", "model is required (for example \"gtt-small\").")
	}
	if err := json.Unmarshal(raw.Model, &job.model); err != nil || job.model == "" {
		return nil, fieldErr(openai.CodeInvalidType, "model", "model must be a non-empty string.")
	}
	if isNull(raw.Horizon) {
		return nil, fieldErr(openai.CodeMissingParameter, "horizon", "horizon (the number of steps to forecast) is required.")
	}
	h, err := strconv.ParseInt(strings.TrimSpace(string(raw.Horizon)), 10, 64)
	if err != nil {
		return nil, fieldErr(openai.CodeInvalidType, "horizon", "horizon must be an integer, got %s.", clip(raw.Horizon))
	}
	if h < 1 || h > maxForecastHorizon {
		return nil, fieldErr(openai.CodeInvalidValue, "horizon", "horizon %d is outside [1, %d].", h, maxForecastHorizon)
	}
	job.horizon = int(h)
	if !isNull(raw.Frequency) {
		if err := json.Unmarshal(raw.Frequency, &job.frequency); err != nil {
			return nil, fieldErr(openai.CodeInvalidType, "frequency", "frequency must be a string such as \"1h\", \"15m\", \"D\", \"W\", \"M\", \"Q\" or \"Y\".")
		}
		if _, err := parseFrequency(job.frequency); err != nil {
			return nil, fieldErr(openai.CodeInvalidValue, "frequency", "frequency %q: %v.", job.frequency, err)
		}
	}
	if !isNull(raw.Quantiles) {
		q, e := parseQuantiles(raw.Quantiles)
		if e != nil {
			return nil, e
		}
		job.quantiles = q
	}
	if !isNull(raw.Guard) {
		g, e := parseGuard(raw.Guard)
		if e != nil {
			return nil, e
		}
		job.guard = g
	}
	if isNull(raw.Series) {
		return nil, fieldErr(openai.CodeMissingParameter, "series", "series is required: a list of {\"target\": [...]} objects.")
	}
	if split == nil {
		var series []json.RawMessage
		if err := json.Unmarshal(raw.Series, &series); err != nil {
			return nil, fieldErr(openai.CodeInvalidType, "series", "series must be a list of objects.")
		}
		if len(series) == 0 {
			return nil, fieldErr(openai.CodeInvalidValue, "series", "series is empty.")
		}
		split = make([]seriesFields, len(series))
		for i, s := range series {
			if err := json.Unmarshal(s, &split[i]); err != nil {
				return nil, fieldErr(openai.CodeInvalidType, fmt.Sprintf("series[%d]", i), "series[%d] must be an object such as {\"target\": [1, 2, 3]}.", i)
			}
		}
	}
	if len(split) > maxForecastSeries {
		return nil, fieldErr(openai.CodeInvalidValue, "series", "series holds %d series; the limit is %d per request.", len(split), maxForecastSeries)
	}
	job.items = make([]forecastItem, len(split))
	for i, s := range split {
		it, e := parseSeriesFields(s, fmt.Sprintf("series[%d]", i), job.horizon, true)
		if e != nil {
			return nil, e
		}
		if it.name == "" {
			it.name = strconv.Itoa(i)
		}
		job.items[i] = *it
		job.steps += len(it.item.Series) * len(it.item.Series[0])
	}
	return job, nil
}

// seriesFields are the fields of one series object, undecoded.
type seriesFields struct {
	Name             json.RawMessage `json:"name"`
	Target           json.RawMessage `json:"target"`
	Timestamps       json.RawMessage `json:"timestamps"`
	PastCovariates   json.RawMessage `json:"past_covariates"`
	FutureCovariates json.RawMessage `json:"future_covariates"`
}

// parseSeries validates one series object. With future false (fine-tuning)
// future covariates are refused.
func parseSeries(raw json.RawMessage, field string, horizon int, future bool) (*forecastItem, *openai.Error) {
	var obj seriesFields
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fieldErr(openai.CodeInvalidType, field, "%s must be an object such as {\"target\": [1, 2, 3]}.", field)
	}
	return parseSeriesFields(obj, field, horizon, future)
}

// parseSeriesFields validates the fields of one series object.
func parseSeriesFields(obj seriesFields, field string, horizon int, future bool) (*forecastItem, *openai.Error) {
	it := &forecastItem{}
	if !isNull(obj.Name) {
		if err := json.Unmarshal(obj.Name, &it.name); err != nil {
			return nil, fieldErr(openai.CodeInvalidType, field+".name", "%s.name must be a string.", field)
		}
	}
	if isNull(obj.Target) {
		return nil, fieldErr(openai.CodeMissingParameter, field+".target", "%s.target is required: the history, [v0, v1, ...] or one such list per channel.", field)
	}
	target, twoD, e := parseValues(obj.Target, field+".target")
	if e != nil {
		return nil, e
	}
	steps := len(target[0])
	if steps < minSeriesSteps {
		return nil, fieldErr(openai.CodeInvalidValue, field+".target", "%s.target has %d steps; at least %d are needed.", field, steps, minSeriesSteps)
	}
	if steps > maxSeriesSteps {
		return nil, fieldErr(openai.CodeInvalidValue, field+".target", "%s.target has %d steps; the limit is %d (the model reads the last 1024).", field, steps, maxSeriesSteps)
	}
	for c, ch := range target {
		if !slices.ContainsFunc(ch[max(0, len(ch)-1024):], observed) {
			name := field + ".target"
			if twoD {
				name = fmt.Sprintf("%s.target[%d]", field, c)
			}
			return nil, fieldErr(openai.CodeInvalidValue, name, "%s has no observed value (all null or NaN) in its last 1024 steps.", name)
		}
	}
	it.targets, it.twoD = len(target), twoD
	it.item.Series = target
	if !isNull(obj.PastCovariates) {
		cov, _, e := parseValues(obj.PastCovariates, field+".past_covariates")
		if e != nil {
			return nil, e
		}
		for c, ch := range cov {
			if len(ch) != steps {
				return nil, fieldErr(openai.CodeInvalidValue, fmt.Sprintf("%s.past_covariates[%d]", field, c),
					"%s.past_covariates[%d] has %d steps; the target has %d.", field, c, len(ch), steps)
			}
			if !slices.ContainsFunc(ch[max(0, len(ch)-1024):], observed) {
				return nil, fieldErr(openai.CodeInvalidValue, fmt.Sprintf("%s.past_covariates[%d]", field, c),
					"%s.past_covariates[%d] has no observed value in its last 1024 steps.", field, c)
			}
		}
		it.item.Series = append(it.item.Series, cov...)
	}
	if !isNull(obj.FutureCovariates) {
		if !future {
			return nil, fieldErr(openai.CodeUnsupportedValue, field+".future_covariates", "%s.future_covariates are not used in fine-tuning; leave them out.", field)
		}
		cov, _, e := parseValues(obj.FutureCovariates, field+".future_covariates")
		if e != nil {
			return nil, e
		}
		for c, ch := range cov {
			if len(ch) != steps+horizon {
				return nil, fieldErr(openai.CodeInvalidValue, fmt.Sprintf("%s.future_covariates[%d]", field, c),
					"%s.future_covariates[%d] has %d steps; it needs the target's %d plus the horizon's %d.", field, c, len(ch), steps, horizon)
			}
		}
		it.item.Known = cov
	}
	if n := len(it.item.Series) + len(it.item.Known); n > maxSeriesChannels {
		return nil, fieldErr(openai.CodeInvalidValue, field, "%s has %d channels with its covariates; the limit is %d.", field, n, maxSeriesChannels)
	}
	if !isNull(obj.Timestamps) {
		ts, e := parseTimestamps(obj.Timestamps, field+".timestamps", steps)
		if e != nil {
			return nil, e
		}
		it.timestamps = ts
		it.item.Timestamps = ts
	}
	return it, nil
}

func observed(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// isNull reports whether a field is absent or null.
func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// clip shortens a raw value for an error message.
func clip(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// parseValues decodes a list of numbers (one channel) or a list of such
// lists (channels of equal length). null, "NaN" and "" mark missing values.
// Numbers beyond float32's range are refused.
func parseValues(raw json.RawMessage, field string) ([][]float32, bool, *openai.Error) {
	if out, twoD, ok := scanValues(raw); ok {
		if len(out) == 0 || len(out[0]) == 0 {
			return nil, twoD, fieldErr(openai.CodeInvalidValue, field, "%s is empty.", field)
		}
		return out, twoD, nil
	}
	var flat []*float64
	if err := json.Unmarshal(raw, &flat); err == nil {
		if len(flat) == 0 {
			return nil, false, fieldErr(openai.CodeInvalidValue, field, "%s is empty.", field)
		}
		ch, e := toChannel(flat, field)
		if e != nil {
			return nil, false, e
		}
		return [][]float32{ch}, false, nil
	}
	var rows [][]*float64
	if err := json.Unmarshal(raw, &rows); err == nil {
		if len(rows) == 0 {
			return nil, true, fieldErr(openai.CodeInvalidValue, field, "%s is empty.", field)
		}
		out := make([][]float32, len(rows))
		for c, r := range rows {
			name := fmt.Sprintf("%s[%d]", field, c)
			if len(r) == 0 {
				return nil, true, fieldErr(openai.CodeInvalidValue, name, "%s is empty.", name)
			}
			if len(r) != len(rows[0]) {
				return nil, true, fieldErr(openai.CodeInvalidValue, name, "%s has %d steps; %s[0] has %d (channels must have equal length).", name, len(r), field, len(rows[0]))
			}
			ch, e := toChannel(r, name)
			if e != nil {
				return nil, true, e
			}
			out[c] = ch
		}
		return out, true, nil
	}
	// Find the offending element.
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, false, fieldErr(openai.CodeInvalidType, field, "%s must be a list of numbers (null for missing) or a list of such lists, got %s.", field, clip(raw))
	}
	if len(elems) == 0 {
		return nil, false, fieldErr(openai.CodeInvalidValue, field, "%s is empty.", field)
	}
	twoD := strings.HasPrefix(strings.TrimSpace(string(elems[0])), "[")
	out := make([][]float32, 0, len(elems))
	var one []float32
	for i, el := range elems {
		name := fmt.Sprintf("%s[%d]", field, i)
		isList := strings.HasPrefix(strings.TrimSpace(string(el)), "[")
		switch {
		case twoD && !isList:
			return nil, true, fieldErr(openai.CodeInvalidType, name, "%s must be a list of numbers like %s[0], got %s.", name, field, clip(el))
		case !twoD && isList:
			return nil, false, fieldErr(openai.CodeInvalidType, name, "%s must be a number or null like %s[0], got a list.", name, field)
		case twoD:
			var inner []json.RawMessage
			if err := json.Unmarshal(el, &inner); err != nil {
				return nil, true, fieldErr(openai.CodeInvalidType, name, "%s must be a list of numbers.", name)
			}
			ch := make([]float32, len(inner))
			for j, v := range inner {
				x, e := parseNumber(v, fmt.Sprintf("%s[%d]", name, j))
				if e != nil {
					return nil, true, e
				}
				ch[j] = x
			}
			if len(ch) == 0 {
				return nil, true, fieldErr(openai.CodeInvalidValue, name, "%s is empty.", name)
			}
			if len(out) > 0 && len(ch) != len(out[0]) {
				return nil, true, fieldErr(openai.CodeInvalidValue, name, "%s has %d steps; %s[0] has %d (channels must have equal length).", name, len(ch), field, len(out[0]))
			}
			out = append(out, ch)
		default:
			x, e := parseNumber(el, name)
			if e != nil {
				return nil, false, e
			}
			one = append(one, x)
		}
	}
	if !twoD {
		return [][]float32{one}, false, nil
	}
	return out, true, nil
}

// scanValues is parseValues' fast path: it reads a list of JSON numbers and
// nulls, or a list of such lists of equal length, without allocating per
// value. ok is false for anything else (strings, ragged or empty inner
// lists, numbers beyond float32's range, malformed JSON), which the slow
// path then reports precisely.
func scanValues(raw []byte) (out [][]float32, twoD, ok bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, false, false
	}
	j := skipSpace(raw, i+1)
	if j < len(raw) && raw[j] == '[' {
		i = j
		for {
			ch, next, ok := scanList(raw, i)
			if !ok || len(ch) == 0 || (len(out) > 0 && len(ch) != len(out[0])) {
				return nil, true, false
			}
			out = append(out, ch)
			i = skipSpace(raw, next)
			if i < len(raw) && raw[i] == ',' {
				i = skipSpace(raw, i+1)
				continue
			}
			if i < len(raw) && raw[i] == ']' && skipSpace(raw, i+1) == len(raw) {
				return out, true, true
			}
			return nil, true, false
		}
	}
	ch, next, ok := scanList(raw, i)
	if !ok || skipSpace(raw, next) != len(raw) {
		return nil, false, false
	}
	return [][]float32{ch}, false, true
}

// scanList reads a list of numbers and nulls starting at raw[i] == '['
// and returns the values and the index after the closing bracket.
func scanList(raw []byte, i int) ([]float32, int, bool) {
	if i >= len(raw) || raw[i] != '[' {
		return nil, 0, false
	}
	out := make([]float32, 0, 64)
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return out, i + 1, true
	}
	for {
		start := i
		for i < len(raw) && raw[i] != ',' && raw[i] != ']' && raw[i] != ' ' && raw[i] != '\n' && raw[i] != '\t' && raw[i] != '\r' {
			i++
		}
		tok := raw[start:i]
		switch {
		case string(tok) == "null":
			out = append(out, float32(math.NaN()))
		case len(tok) > 0 && (tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9'):
			v, err := strconv.ParseFloat(unsafe.String(&tok[0], len(tok)), 64)
			if err != nil || math.Abs(v) > math.MaxFloat32 {
				return nil, 0, false
			}
			out = append(out, float32(v))
		default:
			return nil, 0, false
		}
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return nil, 0, false
		}
		if raw[i] == ']' {
			return out, i + 1, true
		}
		if raw[i] != ',' {
			return nil, 0, false
		}
		i = skipSpace(raw, i+1)
	}
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\t' || raw[i] == '\r') {
		i++
	}
	return i
}

// toChannel converts decoded numbers to float32 (nil to NaN).
func toChannel(vals []*float64, field string) ([]float32, *openai.Error) {
	out := make([]float32, len(vals))
	for i, v := range vals {
		if v == nil {
			out[i] = float32(math.NaN())
			continue
		}
		if math.Abs(*v) > math.MaxFloat32 {
			return nil, fieldErr(openai.CodeInvalidValue, fmt.Sprintf("%s[%d]", field, i), "%s[%d] = %g is beyond the float32 range.", field, i, *v)
		}
		out[i] = float32(*v)
	}
	return out, nil
}

// parseNumber decodes one value: a number, null, or "NaN"/"" for missing.
func parseNumber(raw json.RawMessage, field string) (float32, *openai.Error) {
	s := strings.TrimSpace(string(raw))
	if s == "null" {
		return float32(math.NaN()), nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(raw, &str); err == nil && (str == "" || strings.EqualFold(str, "nan")) {
			return float32(math.NaN()), nil
		}
		return 0, fieldErr(openai.CodeInvalidType, field, "%s is not a number: %s (use null for a missing value).", field, clip(raw))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.Abs(v) > math.MaxFloat32 {
		if err == nil || errors.Is(err, strconv.ErrRange) {
			return 0, fieldErr(openai.CodeInvalidValue, field, "%s = %s is beyond the float32 range.", field, clip(raw))
		}
		return 0, fieldErr(openai.CodeInvalidType, field, "%s is not a number: %s (use null for a missing value).", field, clip(raw))
	}
	return float32(v), nil
}

// parseTimestamps decodes steps increasing times: RFC 3339 strings (or
// "2006-01-02", "2006-01-02 15:04:05") or Unix seconds.
func parseTimestamps(raw json.RawMessage, field string, steps int) ([]time.Time, *openai.Error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fieldErr(openai.CodeInvalidType, field, "%s must be a list of RFC 3339 times or Unix seconds.", field)
	}
	if len(elems) != steps {
		return nil, fieldErr(openai.CodeInvalidValue, field, "%s has %d entries; the target has %d steps.", field, len(elems), steps)
	}
	out := make([]time.Time, len(elems))
	for i, el := range elems {
		name := fmt.Sprintf("%s[%d]", field, i)
		var str string
		if json.Unmarshal(el, &str) == nil {
			t, err := parseTime(str)
			if err != nil {
				return nil, fieldErr(openai.CodeInvalidValue, name, "%s = %q is not an RFC 3339 time or date.", name, str)
			}
			out[i] = t
		} else {
			v, err := strconv.ParseFloat(strings.TrimSpace(string(el)), 64)
			if err != nil || math.IsNaN(v) || math.Abs(v) > 1e12 {
				return nil, fieldErr(openai.CodeInvalidType, name, "%s must be an RFC 3339 time or Unix seconds, got %s.", name, clip(el))
			}
			sec, frac := math.Modf(v)
			out[i] = time.Unix(int64(sec), int64(frac*1e9)).UTC()
		}
		if y := out[i].Year(); y < 1700 || y > 2200 {
			return nil, fieldErr(openai.CodeInvalidValue, name, "%s (%s) is outside the years 1700 to 2200.", name, out[i].Format(time.RFC3339))
		}
		if i > 0 && !out[i].After(out[i-1]) {
			return nil, fieldErr(openai.CodeInvalidValue, name, "%s (%s) is not after %s[%d] (%s); timestamps must increase.", name, out[i].Format(time.RFC3339), field, i-1, out[i-1].Format(time.RFC3339))
		}
	}
	return out, nil
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unknown time format")
}

// parseQuantiles decodes quantile levels: numbers in (0, 1), no duplicates;
// they are returned sorted.
func parseQuantiles(raw json.RawMessage) ([]float64, *openai.Error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fieldErr(openai.CodeInvalidType, "quantiles", "quantiles must be a list of levels such as [0.1, 0.5, 0.9].")
	}
	if len(elems) > maxQuantileLevels {
		return nil, fieldErr(openai.CodeInvalidValue, "quantiles", "quantiles lists %d levels; the limit is %d.", len(elems), maxQuantileLevels)
	}
	out := make([]float64, len(elems))
	for i, el := range elems {
		name := fmt.Sprintf("quantiles[%d]", i)
		v, err := strconv.ParseFloat(strings.TrimSpace(string(el)), 64)
		if err != nil {
			return nil, fieldErr(openai.CodeInvalidType, name, "%s must be a number, got %s.", name, clip(el))
		}
		if !(v > 0 && v < 1) {
			return nil, fieldErr(openai.CodeInvalidValue, name, "%s = %v is outside (0, 1).", name, v)
		}
		if slices.Contains(out[:i], v) {
			return nil, fieldErr(openai.CodeInvalidValue, name, "%s = %v is listed twice.", name, v)
		}
		out[i] = v
	}
	sort.Float64s(out)
	return out, nil
}

// parseGuard decodes the guard field: "auto", "walk", "off", or
// "seasonal" (the same as "auto"). It returns the value to send to the
// plugin, "" for auto (the plugins' default, which shares a batch with
// requests that leave the field out).
func parseGuard(raw json.RawMessage) (string, *openai.Error) {
	var g string
	if err := json.Unmarshal(raw, &g); err != nil {
		return "", fieldErr(openai.CodeInvalidType, "guard", "guard must be a string: \"auto\" (the default), \"walk\" or \"off\"; got %s.", clip(raw))
	}
	switch g {
	case sdk.GuardAuto, sdk.GuardSeasonal:
		return "", nil
	case sdk.GuardWalk, sdk.GuardOff:
		return g, nil
	}
	return "", fieldErr(openai.CodeInvalidValue, "guard", "guard %q is not one of \"auto\" (the default), \"walk\" and \"off\".", g)
}

// frequency is a parsed "frequency" field: a fixed step, or calendar
// months.
type frequency struct {
	step   time.Duration
	months int
}

// parseFrequency reads "D", "W", "M", "Q", "Y" (also "H" and "min") or a
// Go duration such as "15m" or "1h".
func parseFrequency(s string) (frequency, error) {
	switch strings.TrimSpace(s) {
	case "D", "d", "daily":
		return frequency{step: 24 * time.Hour}, nil
	case "W", "w", "weekly":
		return frequency{step: 7 * 24 * time.Hour}, nil
	case "M", "monthly":
		return frequency{months: 1}, nil
	case "Q", "q", "quarterly":
		return frequency{months: 3}, nil
	case "Y", "y", "yearly", "A":
		return frequency{months: 12}, nil
	case "H", "h", "hourly":
		return frequency{step: time.Hour}, nil
	case "min", "T":
		return frequency{step: time.Minute}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return frequency{}, errors.New("want a positive duration such as \"15m\" or \"1h\", or D, W, M, Q, Y")
	}
	return frequency{step: d}, nil
}

// futureTimes stamps the horizon steps after ts: by the frequency when
// given, else by the step the model's calendar infers.
func futureTimes(ts []time.Time, freq string, horizon int) []time.Time {
	last := ts[len(ts)-1]
	out := make([]time.Time, horizon)
	if f, err := parseFrequency(freq); freq != "" && err == nil {
		for k := range out {
			if f.months > 0 {
				out[k] = last.AddDate(0, f.months*(k+1), 0)
			} else {
				out[k] = last.Add(time.Duration(k+1) * f.step)
			}
		}
		return out
	}
	cal, err := gtt.NewCalendar(ts, 1<<16)
	if err != nil {
		return nil
	}
	for k := range out {
		out[k] = cal.After(last, k+1)
	}
	return out
}

// forecastModel is one model /v1/forecast can name.
type forecastModel struct {
	name     string
	pp       *pluginProc
	builtin  bool
	dir      string // tuned models: their directory
	info     sdk.ForecasterInfo
	tuning   *gtt.TuneInfo
	created  time.Time
	channels int // channels a tuned model needs, 0 for any
}

// forecastRegistry holds the forecasting models: those the forecaster
// plugins serve from their start, and the tuned models stored under
// <data-dir>/forecasters/<name>.
type forecastRegistry struct {
	dir     string
	sup     *supervisor
	log     hclog.Logger
	threads int

	admin sync.Mutex // serializes tuning and deletion

	mu    sync.RWMutex
	tuned map[string]*forecastModel

	batch *forecastBatcher
}

// tunableBases maps the built-in models that fine-tuning can start from to
// their weights.
var tunableBases = map[string]func() (*gtt.Model, error){
	"gtt-small": func() (*gtt.Model, error) {
		m, _, err := gtt.Default()
		return m, err
	},
}

// forecasterNameRE is the form of a tuned model's name.
var forecasterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// newForecastRegistry loads the tuned models of dataDir/forecasters into the
// plugin serving their type. A model that fails to load is logged and
// skipped.
func newForecastRegistry(dataDir string, sup *supervisor, threads int, log hclog.Logger) *forecastRegistry {
	reg := &forecastRegistry{
		dir: filepath.Join(dataDir, "forecasters"), sup: sup, log: log.Named("forecasters"), threads: threads,
		tuned: map[string]*forecastModel{},
	}
	reg.batch = newForecastBatcher()
	entries, err := os.ReadDir(reg.dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			reg.log.Warn("cannot read the forecasters directory", "dir", reg.dir, "error", err)
		}
		return reg
	}
	for _, e := range entries {
		if !e.IsDir() || !forecasterNameRE.MatchString(e.Name()) {
			continue
		}
		dir := filepath.Join(reg.dir, e.Name())
		ctx, cancel := context.WithTimeout(context.Background(), pluginCallTime)
		fm, err := reg.loadTuned(ctx, e.Name(), dir)
		cancel()
		if err != nil {
			reg.log.Warn("skipping a tuned forecaster that failed to load", "dir", dir, "error", err)
			continue
		}
		reg.tuned[fm.name] = fm
	}
	return reg
}

// pluginFor returns the forecaster plugin that serves a type ("gtt").
func (reg *forecastRegistry) pluginFor(typ string) *pluginProc {
	for _, pp := range reg.sup.forecasterPlugins() {
		if slices.Contains(pp.pluginInfo().Types, typ) {
			return pp
		}
	}
	return nil
}

// loadTuned loads a tuned model directory into the gtt plugin.
func (reg *forecastRegistry) loadTuned(ctx context.Context, name, dir string) (*forecastModel, error) {
	raw, err := os.ReadFile(filepath.Join(dir, gtt.TuningFile))
	if err != nil {
		return nil, fmt.Errorf("tuned forecaster %s: %w", name, err)
	}
	var tj struct {
		Info gtt.TuneInfo `json:"info"`
	}
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, fmt.Errorf("tuned forecaster %s: %w", name, err)
	}
	pp := reg.pluginFor("gtt")
	if pp == nil {
		return nil, fmt.Errorf("tuned forecaster %s: no running plugin serves gtt models", name)
	}
	pp.admin.Lock()
	info, err := pp.loadForecaster(ctx, name, dir)
	pp.admin.Unlock()
	if err != nil {
		return nil, fmt.Errorf("tuned forecaster %s: %w", name, err)
	}
	created := time.Now()
	if st, err := os.Stat(filepath.Join(dir, gtt.TuningFile)); err == nil {
		created = st.ModTime()
	}
	return &forecastModel{name: name, pp: pp, dir: dir, info: info, tuning: &tj.Info, created: created, channels: info.Channels}, nil
}

// lookup finds a model by name: a tuned model, or one a forecaster plugin
// serves from its start.
func (reg *forecastRegistry) lookup(name string) (*forecastModel, bool) {
	reg.mu.RLock()
	fm, ok := reg.tuned[name]
	reg.mu.RUnlock()
	if ok {
		return fm, true
	}
	for _, pp := range reg.sup.forecasterPlugins() {
		if slices.Contains(pp.pluginInfo().Models, name) {
			return &forecastModel{name: name, pp: pp, builtin: true, info: sdk.ForecasterInfo{ID: name, Type: firstOr(pp.pluginInfo().Types, "")}}, true
		}
	}
	return nil, false
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// list returns every model, built-in ones first, by name.
func (reg *forecastRegistry) list() []*forecastModel {
	var out []*forecastModel
	seen := map[string]bool{}
	for _, pp := range reg.sup.forecasterPlugins() {
		info := pp.pluginInfo()
		for _, id := range info.Models {
			if !seen[id] {
				seen[id] = true
				out = append(out, &forecastModel{name: id, pp: pp, builtin: true, info: sdk.ForecasterInfo{ID: id, Type: firstOr(info.Types, "")}})
			}
		}
	}
	reg.mu.RLock()
	var tuned []*forecastModel
	for _, fm := range reg.tuned {
		tuned = append(tuned, fm)
	}
	reg.mu.RUnlock()
	sort.Slice(tuned, func(i, j int) bool { return tuned[i].name < tuned[j].name })
	return append(out, tuned...)
}

// forecast runs a validated job: its series go to the plugin in one call,
// merged with other requests' series for the same model, horizon, levels
// and guard that arrive while a call is running.
func (reg *forecastRegistry) forecast(ctx context.Context, fm *forecastModel, job *forecastJob) ([]sdk.ItemForecast, error) {
	items := make([]sdk.ForecastItem, len(job.items))
	for i, it := range job.items {
		items[i] = it.item
	}
	return reg.batch.forecast(ctx, fm.pp, fm.name, job.horizon, job.quantiles, job.guard, items)
}

// tune fine-tunes a base model on a tenant's series, stores it as
// <data-dir>/forecasters/<name> and loads it. It replaces a tuned model of
// the same name.
func (reg *forecastRegistry) tune(ctx context.Context, name, base string, items []forecastItem, tc gtt.TuneConfig) (*forecastModel, error) {
	load, ok := tunableBases[base]
	if !ok {
		return nil, errBadTuning{fmt.Sprintf("base %q cannot be fine-tuned; use one of %s", base, strings.Join(tunableBaseNames(), ", "))}
	}
	reg.admin.Lock()
	defer reg.admin.Unlock()
	m, err := load()
	if err != nil {
		return nil, err
	}
	inputs := make([]gtt.Input, len(items))
	for i, it := range items {
		inputs[i] = gtt.Input{Series: it.item.Series, Timestamps: it.item.Timestamps}
	}
	tu, err := gtt.FineTune(ctx, m.WithThreads(reg.threads), base, inputs, tc)
	if err != nil {
		if errors.Is(err, gtt.ErrInvalid) || errors.Is(err, gtt.ErrTooShort) {
			return nil, errBadTuning{err.Error()}
		}
		return nil, err
	}
	if err := os.MkdirAll(reg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("store tuned forecaster %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(reg.dir, ".tmp-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("store tuned forecaster %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	if err := tu.Save(tmp); err != nil {
		return nil, fmt.Errorf("store tuned forecaster %s: %w", name, err)
	}
	final := filepath.Join(reg.dir, name)
	old := ""
	if _, err := os.Stat(final); err == nil {
		old = final + ".old"
		_ = os.RemoveAll(old)
		if err := os.Rename(final, old); err != nil {
			return nil, fmt.Errorf("store tuned forecaster %s: %w", name, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("store tuned forecaster %s: %w", name, err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	fm, err := reg.loadTuned(ctx, name, final)
	if err != nil {
		return nil, err
	}
	reg.mu.Lock()
	reg.tuned[name] = fm
	reg.mu.Unlock()
	reg.log.Info("tuned forecaster stored", "name", name, "base", base, "dir", final,
		"base_holdout_loss", tu.Info().BaseHoldoutLoss, "tuned_holdout_loss", tu.Info().TunedHoldoutLoss)
	return fm, nil
}

func tunableBaseNames() []string {
	var out []string
	for n := range tunableBases {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// errBadTuning is a tuning request the data or settings make impossible.
type errBadTuning struct{ msg string }

func (e errBadTuning) Error() string { return e.msg }

// remove unloads a tuned model and deletes its directory.
func (reg *forecastRegistry) remove(ctx context.Context, name string) error {
	reg.admin.Lock()
	defer reg.admin.Unlock()
	reg.mu.Lock()
	fm, ok := reg.tuned[name]
	delete(reg.tuned, name)
	reg.mu.Unlock()
	if !ok {
		return os.ErrNotExist
	}
	fm.pp.admin.Lock()
	err := fm.pp.unloadForecaster(ctx, name)
	fm.pp.admin.Unlock()
	if err != nil {
		reg.log.Warn("unloading a removed forecaster failed", "name", name, "error", err)
	}
	if err := os.RemoveAll(fm.dir); err != nil {
		return fmt.Errorf("remove tuned forecaster %s: %w", name, err)
	}
	return nil
}

// forecastBatcher merges the series of concurrent requests for the same
// model, horizon, quantile levels and guard into one plugin call: the first
// request calls at once, and those that arrive while a call runs go
// together in the next one.
type forecastBatcher struct {
	mu    sync.Mutex
	lanes map[batchKey]*batchLane
	calls atomic.Int64 // plugin calls made
}

type batchKey struct {
	pp        *pluginProc
	model     string
	horizon   int
	quantiles string
	guard     string
}

type batchLane struct {
	queue []*batchJob
}

type batchJob struct {
	ctx   context.Context
	items []sdk.ForecastItem
	done  chan batchResult
}

type batchResult struct {
	out []sdk.ItemForecast
	err error
}

func newForecastBatcher() *forecastBatcher {
	return &forecastBatcher{lanes: map[batchKey]*batchLane{}}
}

// forecast queues items and waits for their forecasts (or ctx).
func (b *forecastBatcher) forecast(ctx context.Context, pp *pluginProc, model string, horizon int, quantiles []float64, guard string, items []sdk.ForecastItem) ([]sdk.ItemForecast, error) {
	key := batchKey{pp: pp, model: model, horizon: horizon, quantiles: fmt.Sprint(quantiles), guard: guard}
	j := &batchJob{ctx: ctx, items: items, done: make(chan batchResult, 1)}
	b.mu.Lock()
	lane, running := b.lanes[key]
	if !running {
		lane = &batchLane{}
		b.lanes[key] = lane
	}
	lane.queue = append(lane.queue, j)
	b.mu.Unlock()
	if !running {
		go b.run(key, lane, quantiles)
	}
	select {
	case r := <-j.done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run serves a lane until its queue is empty.
func (b *forecastBatcher) run(key batchKey, lane *batchLane, quantiles []float64) {
	for {
		b.mu.Lock()
		var jobs []*batchJob
		n := 0
		for len(lane.queue) > 0 && (n == 0 || n+len(lane.queue[0].items) <= maxBatchItems) {
			j := lane.queue[0]
			lane.queue = lane.queue[1:]
			if j.ctx.Err() != nil {
				continue // its client is gone
			}
			jobs = append(jobs, j)
			n += len(j.items)
		}
		if len(jobs) == 0 && len(lane.queue) == 0 {
			delete(b.lanes, key)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		if len(jobs) > 0 {
			b.call(key, jobs, quantiles)
		}
	}
}

// call sends jobs' items in one plugin call; when it fails with a client
// error and held several jobs, each job is retried alone so that one bad
// request does not fail the others.
func (b *forecastBatcher) call(key batchKey, jobs []*batchJob, quantiles []float64) {
	ctx, cancel := context.WithTimeout(context.Background(), forecastCallTime)
	defer cancel()
	// Cancel the call when every client has gone away.
	var left sync.WaitGroup
	left.Add(len(jobs))
	for _, j := range jobs {
		stop := context.AfterFunc(j.ctx, left.Done)
		defer func() {
			if stop() {
				left.Done()
			}
		}()
	}
	go func() {
		left.Wait()
		cancel()
	}()
	var items []sdk.ForecastItem
	for _, j := range jobs {
		items = append(items, j.items...)
	}
	b.calls.Add(1)
	out, err := forecastCall(ctx, key.pp, key.model, key.horizon, quantiles, key.guard, items)
	if err != nil && len(jobs) > 1 && errors.Is(err, sdk.ErrInvalid) {
		for _, j := range jobs {
			b.call(key, []*batchJob{j}, quantiles)
		}
		return
	}
	off := 0
	for _, j := range jobs {
		if err != nil {
			j.done <- batchResult{err: err}
			continue
		}
		j.done <- batchResult{out: out[off : off+len(j.items)]}
		off += len(j.items)
	}
}

// forecastCall makes one Forecast call to the plugin's running process.
func forecastCall(ctx context.Context, pp *pluginProc, model string, horizon int, quantiles []float64, guard string, items []sdk.ForecastItem) ([]sdk.ItemForecast, error) {
	fc, err := pp.forecasterClient()
	if err != nil {
		return nil, err
	}
	out, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: model, Horizon: horizon, Items: items, Quantiles: quantiles, Guard: guard})
	if err != nil {
		return nil, err
	}
	if len(out.Items) != len(items) {
		return nil, fmt.Errorf("plugin %s: %d forecasts for %d series", pp.name, len(out.Items), len(items))
	}
	return out.Items, nil
}

// forecastThreads is the number of threads fine-tuning uses: the
// configured compute threads, or every core for 0.
func forecastThreads(n int) int {
	if n <= 0 {
		return runtime.NumCPU()
	}
	return n
}
