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
ADDR      ?= 127.0.0.1:8080
MODEL_NAME ?= stories260k
E2E_DIR   := server/e2e
export CARRYON_TESTDATA ?= $(TESTDATA)

.DEFAULT_GOAL := help
.PHONY: help build run generate test-deps test testrace bench lint fuzz clean

help: ## list the targets
	@echo "carryon make targets:"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build bin/carryon
	$(GO) build -o $(CARRYON) ./cmd/carryon

run: build plugins ## start the HTTP server on ADDR (with the built-in plugins), serving MODEL as MODEL_NAME when the file exists
	@if [ -f "$(MODEL)" ]; then set -x; exec $(CARRYON) serve --addr "$(ADDR)" --model "$(MODEL_NAME)=$(MODEL)"; \
	else echo "$(MODEL) not found: starting without a model"; set -x; exec $(CARRYON) serve --addr "$(ADDR)"; fi

generate: build ## generate 40 tokens of PROMPT with MODEL from the command line
	$(CARRYON) run -m "$(MODEL)" -p "$(PROMPT)" -n 40

$(E2E_DIR)/node_modules/.package-lock.json: $(E2E_DIR)/package.json $(E2E_DIR)/package-lock.json
	cd $(E2E_DIR) && npm ci --no-audit --no-fund --ignore-scripts

test-deps: ## install the end-to-end test clients (the pinned OpenAI Node SDK) into server/e2e/node_modules
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(E2E_DIR)/node_modules/.package-lock.json; \
	else echo "npm not found: the OpenAI Node SDK tests will be skipped (they fail under CI=true)"; fi

test: test-deps ## run every test (the shared test data is found through CARRYON_TESTDATA)
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

# Protocol buffers: protoc from Debian's protobuf-compiler, the Go plugins at fixed versions in bin/tools.
PROTOC_VERSION             ?= 3.21.12
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
TOOLS                      := $(abspath $(BIN)/tools)
.PHONY: proto plugins

proto: ## regenerate the Go code of proto/ with the pinned protoc, protoc-gen-go and protoc-gen-go-grpc
	@command -v protoc >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get install -y protobuf-compiler || { apt-get update && apt-get install -y protobuf-compiler; }; else sudo apt-get install -y protobuf-compiler; fi; }
	@v=$$(protoc --version | awk '{print $$2}'); if [ "$$v" != "$(PROTOC_VERSION)" ]; then echo "protoc $$v found, $(PROTOC_VERSION) pinned (set PROTOC_VERSION to override)"; exit 1; fi
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$(TOOLS):$$PATH" protoc -I proto \
		--go_out=. --go_opt=module=github.com/carryon/carryon \
		--go-grpc_out=. --go-grpc_opt=module=github.com/carryon/carryon \
		proto/carryon/v1/*.proto

plugins: ## build the built-in plugins (plugins/*/main.go) into bin/plugins/
	@mkdir -p $(BIN)/plugins
	@for d in plugins/*/; do if [ -f $$d/main.go ]; then n=$$(basename $$d); echo "$(GO) build -o $(BIN)/plugins/$$n ./$$d"; $(GO) build -o $(BIN)/plugins/$$n ./$$d || exit 1; fi; done
