package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/carryon/carryon/models/gtt"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/server/openai"
)

// forecastTuneTimeout bounds one fine-tuning request.
const forecastTuneTimeout = 10 * time.Minute

// Limits of a fine-tuning request.
const (
	maxTuneSteps     = 5000
	defaultTuneSteps = 300
)

// forecastResponse is the body of a /v1/forecast answer.
type forecastResponse struct {
	Model     string           `json:"model"`
	Forecasts []seriesForecast `json:"forecasts"`
	Usage     forecastUsage    `json:"usage"`
}

// seriesForecast is the forecast of one series. Mean and each quantile are
// a list of horizon values for a 1-D target, one list per channel for a
// 2-D target.
type seriesForecast struct {
	Name       string         `json:"name"`
	Mean       any            `json:"mean"`
	Quantiles  map[string]any `json:"quantiles,omitempty"`
	Timestamps []string       `json:"timestamps,omitempty"`
}

// forecastUsage says what a forecast cost.
type forecastUsage struct {
	Series     int     `json:"series"`
	Channels   int     `json:"channels"`
	Steps      int     `json:"steps"`
	Horizon    int     `json:"horizon"`
	ForecastMS float64 `json:"forecast_ms"`
	TotalMS    float64 `json:"total_ms"`
}

// handleForecast serves POST /v1/forecast.
func (s *Server) handleForecast(c *fasthttp.RequestCtx, info *requestInfo) {
	job, e := parseForecastRequest(c.PostBody())
	if e != nil {
		s.writeError(c, info, e)
		return
	}
	info.model = job.model
	fm, ok := s.forecasts.lookup(job.model)
	if !ok && len(s.forecasts.sup.forecasterPlugins()) == 0 {
		s.writeError(c, info, openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "",
			fmt.Sprintf("No forecaster plugin is running: build them with 'make plugins' into the plugins directory (%s) and restart the server.", s.cfg.PluginsDir)))
		return
	}
	if !ok {
		s.writeError(c, info, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeModelNotFound, "model",
			fmt.Sprintf("The forecasting model '%s' does not exist; GET /v1/forecasters lists them.", job.model)))
		return
	}
	if fm.channels > 0 {
		for i, it := range job.items {
			if n := len(it.item.Series); n != fm.channels {
				s.writeError(c, info, fieldErr(openai.CodeInvalidValue, fmt.Sprintf("series[%d].target", i),
					"The model '%s' was tuned on %d channel(s) (target and past covariates); series[%d] has %d.", fm.name, fm.channels, i, n))
				return
			}
		}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	stop := watchClient(c, cancel)
	defer stop()
	t0 := time.Now()
	out, err := s.forecasts.forecast(ctx, fm, job)
	took := time.Since(t0)
	if err != nil {
		s.writeError(c, info, forecastError(fm.name, err))
		return
	}
	resp := forecastResponse{Model: job.model, Forecasts: make([]seriesForecast, len(job.items))}
	channels := 0
	for i, it := range job.items {
		f := out[i]
		sf := seriesForecast{Name: it.name, Mean: shape(f.Values[:it.targets], it.twoD)}
		if len(job.quantiles) > 0 {
			sf.Quantiles = make(map[string]any, len(job.quantiles))
			for l, q := range job.quantiles {
				sf.Quantiles[strconv.FormatFloat(q, 'f', -1, 64)] = shape(f.Quantiles[l][:it.targets], it.twoD)
			}
		}
		if it.timestamps != nil {
			for _, t := range futureTimes(it.timestamps, job.frequency, job.horizon) {
				sf.Timestamps = append(sf.Timestamps, t.Format(time.RFC3339))
			}
		}
		resp.Forecasts[i] = sf
		channels += len(it.item.Series)
	}
	resp.Usage = forecastUsage{Series: len(job.items), Channels: channels, Steps: job.steps, Horizon: job.horizon,
		ForecastMS: ms(took), TotalMS: ms(time.Since(info.start))}
	writeJSON(c, http.StatusOK, resp)
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// jsonFloats are values written with null for NaN (which JSON cannot hold).
type jsonFloats []float32

// MarshalJSON writes the values, NaN and ±Inf as null.
func (v jsonFloats) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 10*len(v)+2)
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return append(b, ']'), nil
}

// shape returns one channel's values as a list, or every channel's as a
// list of lists.
func shape(values [][]float32, twoD bool) any {
	if !twoD {
		return jsonFloats(values[0])
	}
	out := make([]jsonFloats, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

// watchClient cancels when the client closes its connection while the
// request runs (or the server shuts down); stop ends the watch.
func watchClient(c *fasthttp.RequestCtx, cancel context.CancelFunc) (stop func()) {
	conn := c.Conn()
	watchPeer := conn != nil
	if watchPeer {
		if _, ok := peerGone(conn); !ok {
			watchPeer = false
		} else {
			// The handler owns the connection now; the deadline set for
			// reading the request would fail the peeks once it passes.
			_ = c.SetReadDeadline(time.Time{})
		}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-c.Done():
				cancel()
				return
			case <-t.C:
				if !watchPeer {
					continue
				}
				if gone, ok := peerGone(conn); ok && gone {
					cancel()
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// forecastError turns a plugin error into an API error.
func forecastError(model string, err error) *openai.Error {
	switch {
	case errors.Is(err, sdk.ErrInvalid):
		return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeInvalidValue, "series",
			fmt.Sprintf("The model '%s' refused the series: %v", model, err))
	case errors.Is(err, sdk.ErrUnknownHead):
		return openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeModelNotFound, "model",
			fmt.Sprintf("The forecasting model '%s' is not loaded: %v", model, err))
	case errors.Is(err, context.Canceled):
		return openai.NewError(499, openai.TypeInvalidRequest, "client_closed", "", "The client went away.")
	case errors.Is(err, errPluginDown), errors.Is(err, context.DeadlineExceeded):
		return openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "",
			fmt.Sprintf("The forecaster of '%s' is unavailable: %v", model, err))
	}
	return openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "",
		fmt.Sprintf("Forecasting with '%s' failed: %v", model, err))
}

// forecasterObject describes a model in the /v1/forecasters listing.
type forecasterObject struct {
	ID       string        `json:"id"`
	Object   string        `json:"object"`
	Type     string        `json:"type"`
	Builtin  bool          `json:"builtin"`
	Plugin   string        `json:"plugin"`
	Version  string        `json:"version,omitempty"`
	Channels int           `json:"channels,omitempty"`
	Created  int64         `json:"created,omitempty"`
	Tuning   *gtt.TuneInfo `json:"tuning,omitempty"`
}

func describeForecaster(fm *forecastModel) forecasterObject {
	o := forecasterObject{ID: fm.name, Object: "forecaster", Type: fm.info.Type, Builtin: fm.builtin, Plugin: fm.pp.name,
		Version: fm.info.Version, Channels: fm.channels, Tuning: fm.tuning}
	if !fm.created.IsZero() {
		o.Created = fm.created.Unix()
	}
	return o
}

// tuneRequest is the body of POST /v1/forecasters.
type tuneRequest struct {
	Name    json.RawMessage `json:"name"`
	Base    json.RawMessage `json:"base"`
	Series  json.RawMessage `json:"series"`
	Steps   json.RawMessage `json:"steps"`
	Holdout json.RawMessage `json:"holdout"`
	Seed    json.RawMessage `json:"seed"`
}

// handleForecasters serves the forecaster routes:
//
//	GET    /v1/forecasters         list the models
//	POST   /v1/forecasters         fine-tune {"name","base","series",["steps","holdout","seed"]}
//	GET    /v1/forecasters/{name}  describe one
//	DELETE /v1/forecasters/{name}  remove a tuned model
//
// Fine-tuning and deletion need the admin key when one is set.
func (s *Server) handleForecasters(c *fasthttp.RequestCtx, info *requestInfo) {
	name := strings.Trim(strings.TrimPrefix(string(c.Path()), "/v1/forecasters"), "/")
	method := string(c.Method())
	if method != fasthttp.MethodGet && !s.adminAllowed(c) {
		c.Response.Header.Set("WWW-Authenticate", "Bearer")
		s.writeError(c, info, openai.NewError(http.StatusUnauthorized, openai.TypeInvalidRequest, "invalid_api_key", "",
			"Fine-tuning and removing forecasters need 'Authorization: Bearer <admin key>'."))
		return
	}
	switch {
	case name == "" && method == fasthttp.MethodGet:
		data := []forecasterObject{}
		for _, fm := range s.forecasts.list() {
			data = append(data, describeForecaster(fm))
		}
		writeJSON(c, http.StatusOK, map[string]any{"object": "list", "data": data})
	case name == "" && method == fasthttp.MethodPost:
		s.tuneForecaster(c, info)
	case name != "" && method == fasthttp.MethodGet:
		fm, ok := s.forecasts.lookup(name)
		if !ok {
			s.writeError(c, info, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeModelNotFound, "", fmt.Sprintf("The forecaster '%s' does not exist.", name)))
			return
		}
		writeJSON(c, http.StatusOK, describeForecaster(fm))
	case name != "" && method == fasthttp.MethodDelete:
		if fm, ok := s.forecasts.lookup(name); ok && fm.builtin {
			s.writeError(c, info, fieldErr(openai.CodeInvalidValue, "", "The forecaster '%s' is built into its plugin and cannot be removed.", name))
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, pluginCallTime)
		defer cancel()
		err := s.forecasts.remove(ctx, name)
		switch {
		case errors.Is(err, os.ErrNotExist):
			s.writeError(c, info, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeModelNotFound, "", fmt.Sprintf("The forecaster '%s' does not exist.", name)))
		case err != nil:
			s.writeError(c, info, openai.NewError(http.StatusInternalServerError, openai.TypeServer, openai.CodeInternal, "", err.Error()))
		default:
			writeJSON(c, http.StatusOK, map[string]any{"id": name, "object": "forecaster", "deleted": true})
		}
	default:
		c.Response.Header.Set("Allow", "GET, POST, DELETE")
		s.writeError(c, info, openai.NewError(http.StatusMethodNotAllowed, openai.TypeInvalidRequest, openai.CodeMethodNotAllowed, "",
			fmt.Sprintf("Method %s is not allowed for %s.", method, c.Path())))
	}
}

// tuneForecaster serves POST /v1/forecasters.
func (s *Server) tuneForecaster(c *fasthttp.RequestCtx, info *requestInfo) {
	var req tuneRequest
	if err := json.Unmarshal(c.PostBody(), &req); err != nil {
		s.writeError(c, info, fieldErr(openai.CodeInvalidJSON, "", "The body is not a JSON object: %v.", err))
		return
	}
	var name, base string
	if isNull(req.Name) || json.Unmarshal(req.Name, &name) != nil || !forecasterNameRE.MatchString(name) {
		s.writeError(c, info, fieldErr(openai.CodeInvalidValue, "name", "name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."))
		return
	}
	base = "gtt-small"
	if !isNull(req.Base) && json.Unmarshal(req.Base, &base) != nil {
		s.writeError(c, info, fieldErr(openai.CodeInvalidType, "base", "base must be a string."))
		return
	}
	if fm, ok := s.forecasts.lookup(name); ok && fm.builtin {
		s.writeError(c, info, openai.NewError(http.StatusConflict, openai.TypeInvalidRequest, "conflict", "name", fmt.Sprintf("'%s' is a built-in forecaster's name.", name)))
		return
	}
	if _, ok := tunableBases[base]; !ok {
		s.writeError(c, info, fieldErr(openai.CodeInvalidValue, "base", "base %q cannot be fine-tuned; use one of %s.", base, strings.Join(tunableBaseNames(), ", ")))
		return
	}
	tc := gtt.TuneConfig{Steps: defaultTuneSteps}
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		dst  *int
		lo   int
		hi   int
	}{{req.Steps, "steps", &tc.Steps, 1, maxTuneSteps}, {req.Holdout, "holdout", &tc.Holdout, 0, 4096}} {
		if isNull(f.raw) {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(f.raw)))
		if err != nil || v < f.lo || v > f.hi {
			s.writeError(c, info, fieldErr(openai.CodeInvalidValue, f.name, "%s must be an integer in [%d, %d].", f.name, f.lo, f.hi))
			return
		}
		*f.dst = v
	}
	if tc.Holdout == 0 && !isNull(req.Holdout) {
		tc.Holdout = -1 // an explicit 0 holds nothing out
	}
	if !isNull(req.Seed) {
		if err := json.Unmarshal(req.Seed, &tc.Seed); err != nil {
			s.writeError(c, info, fieldErr(openai.CodeInvalidType, "seed", "seed must be a non-negative integer."))
			return
		}
	}
	var series []json.RawMessage
	if isNull(req.Series) || json.Unmarshal(req.Series, &series) != nil || len(series) == 0 {
		s.writeError(c, info, fieldErr(openai.CodeInvalidValue, "series", "series must be a non-empty list of {\"target\": [...]} objects."))
		return
	}
	if len(series) > maxForecastSeries {
		s.writeError(c, info, fieldErr(openai.CodeInvalidValue, "series", "series holds %d series; the limit is %d.", len(series), maxForecastSeries))
		return
	}
	items := make([]forecastItem, len(series))
	for i, raw := range series {
		it, e := parseSeries(raw, fmt.Sprintf("series[%d]", i), 0, false)
		if e != nil {
			s.writeError(c, info, e)
			return
		}
		if i > 0 && len(it.item.Series) != len(items[0].item.Series) {
			s.writeError(c, info, fieldErr(openai.CodeInvalidValue, fmt.Sprintf("series[%d].target", i),
				"series[%d] has %d channels (target and past covariates); series[0] has %d. A tuned model learns one scale per channel.", i, len(it.item.Series), len(items[0].item.Series)))
			return
		}
		items[i] = *it
	}
	info.model = name
	ctx, cancel := context.WithTimeout(s.ctx, forecastTuneTimeout)
	defer cancel()
	stop := watchClient(c, cancel)
	defer stop()
	fm, err := s.forecasts.tune(ctx, name, base, items, tc)
	var bad errBadTuning
	switch {
	case errors.As(err, &bad):
		s.writeError(c, info, fieldErr(openai.CodeInvalidValue, "series", "%s.", bad.msg))
	case err != nil:
		s.writeError(c, info, openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "", "Fine-tuning failed: "+err.Error()))
	default:
		writeJSON(c, http.StatusCreated, describeForecaster(fm))
	}
}
