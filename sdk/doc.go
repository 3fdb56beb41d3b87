// Package sdk is the public API for plugin authors: the Head and Forecaster
// interfaces, the functions that serve an implementation as a carryon
// plugin, and a test harness. A plugin author reads this package and never
// sees gRPC.
package sdk
