package sdk

import "context"

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

// ForecastRequest asks for a forecast.
type ForecastRequest struct {
	// Model is the id the model was loaded under.
	Model string
	// Series holds the history, one slice per channel, all of the same
	// length; NaN marks a missing value.
	Series [][]float32
	// Horizon is the number of steps to predict.
	Horizon int
}

// Forecast is the prediction for a ForecastRequest.
type Forecast struct {
	// Values holds Horizon predicted steps per channel, in the request's
	// channel order.
	Values [][]float32
}
