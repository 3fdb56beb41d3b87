# carryon — build, run and test. Bare `make` lists the targets.

GO        ?= go
BIN       := bin
CARRYON   := $(BIN)/carryon
TESTDATA  ?= $(abspath ../shared/testdata)
MODEL     ?= $(TESTDATA)/stories260K.gguf
PROMPT    ?= Once upon a time
FUZZTIME  ?= 30s
BENCH_DIR ?= .cache/bench-models
THREADS   ?= 2
export CARRYON_TESTDATA ?= $(TESTDATA)

.DEFAULT_GOAL := help
.PHONY: help build run test testrace bench lint fuzz clean

help: ## list the targets
	@echo "carryon make targets:"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build bin/carryon
	$(GO) build -o $(CARRYON) ./cmd/carryon

run: build ## run carryon on MODEL (default: the shared stories260K model)
	$(CARRYON) run -m "$(MODEL)" -p "$(PROMPT)" -n 40

test: ## run every test (the shared test data is found through CARRYON_TESTDATA)
	$(GO) vet ./...
	$(GO) test -count=1 ./...

testrace: ## run the tests under the race detector
	$(GO) test -race -count=1 ./...

bench: build ## generate the benchmark models once, run the micro-benchmarks and carryon bench on each
	$(CARRYON) gen-model --bench-set --dir $(BENCH_DIR)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./models/...
	@for f in $(BENCH_DIR)/*.gguf; do $(CARRYON) bench -m $$f -t $(THREADS) -p 128 -n 64 -b 8 || exit 1; done

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## run the fuzz targets for FUZZTIME each
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./models/gguf/

clean: ## remove build outputs
	rm -rf $(BIN)
