// Package config is the one place that defines carryon serve's settings:
// their names, defaults, environment variables, command-line flags and
// config-file keys, and how they are validated.
//
// Every setting can come from four places; the first that sets it wins:
//
//  1. a command-line flag (--addr),
//  2. an environment variable (CARRYON_ADDR),
//  3. the config file (key addr), named by --config or CARRYON_CONFIG,
//  4. the default.
//
// The config file is JSON (a .json name) or YAML (any other name), with the
// keys of Settings; unknown keys are an error, so a misspelt key does not go
// unnoticed. Durations are written as Go durations ("30s", "1m30s"). A list
// setting (models) given at one level replaces the list of the levels below.
package config
