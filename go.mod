module github.com/carryon/carryon

go 1.26.0

require github.com/dlclark/regexp2 v1.12.0

require (
	github.com/hashicorp/go-hclog v1.6.3
	golang.org/x/sys v0.50.0
)

require (
	github.com/fatih/color v1.13.0 // indirect
	github.com/mattn/go-colorable v0.1.12 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/ollama/ollama v0.17.4
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
