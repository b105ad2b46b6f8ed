# Pigment: build, test and benchmark. `make test` is what CI runs.
GO       ?= go
BIN      ?= bin/pigment
PKGS     ?= ./...
# Service packages run under the race detector (they are concurrent code).
RACE_PKGS = $(shell $(GO) list ./gateway/... ./workers/... ./assets/... 2>/dev/null)

.PHONY: all build run test test-short race fuzz bench bench-unet bench-load vet fmt clean model eval

all: build

build:
	$(GO) build -o $(BIN) ./cmd/pigment

# The whole service on 127.0.0.1:8080: embedded NATS JetStream (data in
# ./pigment-data), the gateway and one worker serving the models in ./models.
run: build
	mkdir -p models
	$(BIN) serve --addr 127.0.0.1:8080 --data-dir pigment-data --models-dir models --workers 1

# pigment-tiny, the default model, trained from scratch on the synthetic
# shapes data set: autoencoder, decoder fine-tune, UNet + text encoder with
# white-on-black geometry drills (the base model), then the UNet and text
# encoder fine-tuned on coloured drills, which carry the shapes over to
# coloured objects (about 1 h 50 min on 2 cores, summed from each stage's measured
# throughput; see BENCHMARKS.md). Checkpoints go to models/pigment-tiny.work;
# rerunning resumes.
MODEL_WORK = models/pigment-tiny.work
model: build
	$(BIN) train --data shapes --out $(MODEL_WORK)/base --work $(MODEL_WORK)
	$(BIN) train --data shapes --from $(MODEL_WORK)/base --out models/pigment-tiny --work $(MODEL_WORK)/colour \
		--steps 3000 --lr 6e-4 --warmup 100 --drills 0.5 --colour-drills 1

# Score pigment-tiny on 200 held-out captions with the shapes analyser.
eval: build
	$(BIN) eval --model models/pigment-tiny --captions 200

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

# The whole suite: vet, unit + golden tests (golden tests skip with a message
# when ../shared/refs is absent), the race detector on the service packages,
# and a short run of every fuzz target.
test: vet
	$(GO) test -count=1 -timeout 10m $(PKGS)
ifneq ($(strip $(RACE_PKGS)),)
	$(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)
endif
	$(MAKE) fuzz FUZZTIME=10000x

test-short:
	$(GO) test -short -count=1 $(PKGS)

# A count (10000x) rather than a duration in `make test`: Go 1.26's fuzz
# coordinator can fail a target with "context deadline exceeded" when a
# duration-based -fuzztime expires mid-execution (go.dev/issue/75804, fixed
# in Go 1.27); a count has no deadline to race.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./diffusion/safetensors/
	$(GO) test -run '^$$' -fuzz '^FuzzTokenizer$$' -fuzztime $(FUZZTIME) ./diffusion/clip/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./diffusion/imageio/
	$(GO) test -run '^$$' -fuzz '^FuzzReadPNGText$$' -fuzztime $(FUZZTIME) ./diffusion/imageio/
	$(GO) test -run '^$$' -fuzz '^FuzzCreateJob$$' -fuzztime $(FUZZTIME) ./gateway/

# Micro-benchmarks (testing.B), then the engine at SD 1.5 size (random
# weights; each line: seconds, GFLOP/s, fraction of the measured 4096³ sgemm
# peak, peak RSS) and the default model's images/s at 64x64.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x ./diffusion/...
	$(BIN) bench unet
	$(BIN) bench vae
	$(BIN) bench text
	$(BIN) bench generate --dtype f16 --steps 20
	$(BIN) bench model --model models/pigment-tiny --steps 20 --images 32 --batch 8

# Load benchmark: 1000 small jobs against a running `make run`.
bench-load: build
	$(BIN) bench load --url http://127.0.0.1:8080 --jobs 1000 --concurrency 16 --json

bench-unet: build
	$(BIN) bench unet --json

clean:
	rm -rf bin
