// Package tsdata holds the time-series data side of forecasting: reading
// series from CSV files (long tables with an optional date column, and the
// wide one-series-per-row layout of the M4 competition), generating
// synthetic series for pretraining, and the standard long-horizon
// evaluation protocol (chronological splits, train-split normalization,
// rolling windows, MSE and MAE) with naive and seasonal-naive baselines,
// the M4 competition's protocol (sMAPE, MASE and OWA against its Naive2
// benchmark) and the seasonal-period search the forecasters share.
//
// It knows nothing about any model: a forecaster is anything that
// implements Forecaster.
package tsdata
