package sdk

import (
	"context"
	"time"
)

// Forecaster is what a forecaster plugin implements: it loads time-series
// models from directories and predicts the next steps of multivariate series.
// It must be safe for concurrent use. Errors should wrap ErrUnknownHead (for
// an unknown model id), ErrInvalid or ErrUnsupported where they apply.
type Forecaster interface {
	// Info describes the plugin.
	Info(ctx context.Context) (PluginInfo, error)

	// Load reads the model directory dir and makes it available under id.
	// Loading an id that is already loaded replaces it.
	Load(ctx context.Context, id, dir string) (ForecasterInfo, error)

	// Unload drops a model.
	Unload(ctx context.Context, id string) error

	// Forecast predicts the next req.Horizon steps of every channel of
	// req.Series.
	Forecast(ctx context.Context, req ForecastRequest) (Forecast, error)
}

// ForecasterInfo describes a loaded forecasting model.
type ForecasterInfo struct {
	// ID is the id the model was loaded under.
	ID string
	// Version is the content hash of the model's directory.
	Version string
	// Type is the model kind, such as "gtt".
	Type string
	// Context is the number of past steps the model reads; longer series
	// are cut to their last Context steps.
	Context int
	// Horizon is the number of steps one pass predicts; longer horizons
	// are rolled out.
	Horizon int
	// Channels is the number of channels the model needs, or 0 for any.
	Channels int
}

// ForecastRequest asks for a forecast: of Series (one item without
// timestamps or known covariates), or of every element of Items.
type ForecastRequest struct {
	// Model is the id the model was loaded under.
	Model string
	// Series holds the history, one slice per channel, all of the same
	// length; NaN marks a missing value. It must be empty when Items is
	// not.
	Series [][]float32
	// Horizon is the number of steps to predict.
	Horizon int
	// Items holds independent multivariate histories to forecast in one
	// call; the channels of one item attend to each other.
	Items []ForecastItem
	// Quantiles lists the quantile levels, each in (0, 1) and in
	// increasing order, to predict besides the point forecast; empty for
	// none. They are answered for requests with Items (in
	// ItemForecast.Quantiles); a request with Series gets Values only.
	Quantiles []float64
	// Guard says how classic baselines guard the model's forecast: one of
	// GuardAuto, GuardWalk or GuardOff (or GuardSeasonal, meaning GuardAuto). The empty string means
	// GuardAuto; the core sends it for requests that leave the choice to
	// the plugin, so every plugin must accept it. A plugin that does not
	// know a value, or has no such guard, refuses the request with an error
	// wrapping ErrInvalid.
	Guard string
}

// The values of ForecastRequest.Guard.
const (
	// GuardAuto gives the naive forecast (the last observed value) to
	// channels whose history behaves as a random walk; to every other
	// channel whose history shows a season the mean of the model's and the
	// seasonal-naive forecast (the last season repeated), weighted by their
	// backtest errors; to a channel without a season whose backtests favour
	// a damped trend strongly, the model's forecast mixed with that trend;
	// and the model's forecast to the rest. It is the default: the empty
	// string means the same.
	GuardAuto = "auto"
	// GuardSeasonal means GuardAuto (which includes the seasonal mix); it
	// is accepted so that requests written for it keep working.
	GuardSeasonal = "seasonal"
	// GuardWalk guards random-walk channels only: no seasonal or trend
	// mix, and so no backtest forecasts.
	GuardWalk = "walk"
	// GuardOff uses the model's forecast alone.
	GuardOff = "off"
)

// ForecastItem is one multivariate history of a ForecastRequest.
type ForecastItem struct {
	// Series holds the history, one slice per channel, all of the same
	// length (at least one step); NaN marks a missing value.
	Series [][]float32
	// Timestamps, when not nil, holds the time of every step, increasing.
	Timestamps []time.Time
	// Known holds covariates whose future is known (such as a price plan
	// or a holiday flag), one slice per channel of len(Series[0])+Horizon
	// steps: inputs to the model, never predicted. Nil for none.
	Known [][]float32
}

// AllItems returns req.Items, or req.Series as a single item when Items is
// empty.
func (req ForecastRequest) AllItems() []ForecastItem {
	if len(req.Items) > 0 {
		return req.Items
	}
	return []ForecastItem{{Series: req.Series}}
}

// Forecast is the prediction for a ForecastRequest.
type Forecast struct {
	// Values holds Horizon predicted steps per channel, in the request's
	// channel order, for a request with Series.
	Values [][]float32
	// Items holds one prediction per request item, in order, for a
	// request with Items.
	Items []ItemForecast
}

// ItemForecast is the prediction for one ForecastItem.
type ItemForecast struct {
	// Values holds Horizon predicted steps (the point forecast) per
	// channel, in the item's channel order.
	Values [][]float32
	// Quantiles holds, per requested level in order, Horizon steps per
	// channel ([level][channel][step]); nil when none were requested.
	Quantiles [][][]float32
}
