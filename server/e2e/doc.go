// Package e2e tests carryon's HTTP API end to end with the clients product
// backends use: the official OpenAI Node SDK (npm package openai, pinned in
// package.json and installed into node_modules/ here by `make test-deps`,
// which `make test` runs) driven from openai_sdk.mjs, and Ollama's Go
// client (github.com/ollama/ollama/api). Each test starts a real server on
// a random port with the shared stories260K model.
//
// Without node_modules the Node test is skipped with a message, except
// under CI=true, where it fails.
package e2e
