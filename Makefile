# csam-onnx: the two commands of the README are `make demo` and `make test`.
# `make help` lists every target.

GO           ?= go
BIN          := bin/csam-onnx
# The whole suite runs well under this on 2 cores; the limit only stops a
# hung test from holding CI for its 90 minutes.
TEST_TIMEOUT ?= 30m
# RUN narrows the tests: make test RUN=TestInspect PKGS=./internal/cli
RUN          ?=
PKGS         ?= ./...
FUZZTIME     ?= 30s
DEMO_MODEL   := models/fmnist_resnet8.onnx
DEMO_OUT     := out/demo

# Where check-torchvision keeps its (large, generated) exports.
TV_DIR       ?= $(or $(CSAM_ONNX_CACHE),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/csam-onnx),$(HOME)/.cache/csam-onnx)/torchvision

.PHONY: help setup build test demo bench bench-peers conformance fuzz generate lint clean experiments results check-torchvision models models-save models-status

help:
	@echo "make demo         set up, build, and run the main job on the shipped model"
	@echo "make test         set up and run the whole test suite (RUN=regexp PKGS=./pkg to narrow)"
	@echo "make setup        install Debian packages, onnxruntime 1.24.3 and Go modules (quiet when present)"
	@echo "make build        build $(BIN)"
	@echo "make bench        benchmarks of the engine"
	@echo "make bench-peers  the engine against onnxruntime and PyTorch (python3-torch) side by side, one run"
	@echo "make conformance  run the ONNX conformance tests and write docs/conformance.md"
	@echo "make fuzz         fuzz onnxio.Decode for $(FUZZTIME)"
	@echo "make generate     regenerate the protobuf types (needs protobuf-compiler: installed by setup --generate) and the generated assembly"
	@echo "make lint         gofmt and go vet"
	@echo "make experiments  run (or resume) the experiment grid EXP=$(EXP) (JOBS=2: two shards side by side)"
	@echo "make models       train (or resume) the reference models into out/models (MODELS=..., JOBS=2), from $(MODELS_STATE) on a fresh machine"
	@echo "make models-status  each training's test accuracy per epoch so far, and the finished models'"
	@echo "make models-save  copy the trainings' checkpoints and finished models from out/models into $(MODELS_STATE) (to commit)"
	@echo "make results      regenerate docs/RESULTS.md from docs/results/*.json"
	@echo "make check-torchvision  export torchvision ResNet-18, GoogLeNet, MobileNet-V2 (TV_FLAGS=\"--subset --more\": eleven more classifiers; needs python3-torch, python3-torchvision) and run check on each"

setup:
	@scripts/setup.sh

build:
	$(GO) build -o $(BIN) ./cmd/csam-onnx

test: setup
	$(GO) test -timeout $(TEST_TIMEOUT) $(if $(RUN),-run '$(RUN)') $(PKGS)
	# the Go loops that stand in for the assembly kernels on other CPUs
	$(GO) test -tags purego -timeout $(TEST_TIMEOUT) $(if $(RUN),-run '$(RUN)') ./tensor ./autodiff

demo: setup build
	$(BIN) inspect $(DEMO_MODEL)
	$(BIN) compress $(DEMO_MODEL) --data fashion-mnist --sparsity 0.9 --method csam \
		--search-epochs 1 --finetune-epochs 1 --train-subset 10000 --test-subset 2000 \
		--checkpoint-dir $(DEMO_OUT)/ckpt --resume -o $(DEMO_OUT)/fmnist_resnet8.csam.onnx
	$(BIN) verify $(DEMO_OUT)/fmnist_resnet8.csam.onnx --data fashion-mnist --baseline $(DEMO_MODEL) \
		--subset 1000 --corruptions all --certify cc-cert,smoothing --cc-transform gamma:1.5 \
		--cert-subset 50 --n 500 -o $(DEMO_OUT)/report
	@echo "report: $(DEMO_OUT)/report/report.html"

bench: setup
	$(GO) test -run '^$$' -bench 'Sgemm|DirectConv' -benchmem ./tensor
	$(GO) test -run '^$$' -bench 'ResNet18$$|ResNet18Peers|TrainPeers|ModelsTrain|ReferenceTraining|MaxPool3x3|DirectConv/|FusedRelu|PlanesStep' -benchtime 3x -benchmem -timeout 60m ./autodiff
	$(GO) test -run '^$$' -bench 'ShrunkORT' -benchtime 3s -timeout 30m ./graph
	$(GO) test -run '^$$' -bench 'SampleUnderNoise|CorruptionSweep' -timeout 30m ./runtime
	$(GO) test -run '^$$' -bench 'DecodeCIFARJPEG|Batches' -benchtime 1x -timeout 30m ./dataset
	$(GO) test -run '^$$' -bench 'PipelineVsStep' -benchtime 1x -timeout 30m ./finetune

# The engine and its peers alternating in one run: inference vs
# onnxruntime, training steps vs PyTorch (skipped without python3-torch).
bench-peers: setup
	$(GO) test -run '^$$' -bench 'ResNet18Peers|TrainPeers' -benchtime 4x -timeout 60m ./autodiff

# The issue-7 grid: rerun the same command to resume; finished cells are
# skipped. EXP=experiments/grid.yaml for the wide grid. JOBS=2 runs two
# shards side by side with one thread each (docs/performance.md), then
# the summary once.
EXP ?= experiments/headline.yaml
JOBS ?= 1
experiments: setup build
ifeq ($(JOBS),1)
	$(BIN) experiment --config $(EXP)
else
	@pids=""; for i in $$(seq 0 $$(($(JOBS)-1))); do \
		$(BIN) --threads 1 experiment --config $(EXP) --shard $$i/$(JOBS) --no-results & pids="$$pids $$!"; \
	done; rc=0; for p in $$pids; do wait $$p || rc=1; done; exit $$rc
	$(BIN) experiment --config $(EXP) --results-only
endif

# Train (or resume) the reference models of models/README.md into
# out/models with the commands written there; MODELS="name ..." picks
# some, JOBS=2 runs two side by side with one thread each. Hours per
# CIFAR-10 model: rerun the same command to continue.
MODELS ?=
# MODELS_STATE: the trainings' state that outlives a machine (committed);
# `make models` resumes from it, `make models-save` refreshes it.
MODELS_STATE ?= models/training
models: setup build
	JOBS=$(JOBS) STATE=$(MODELS_STATE) scripts/train_models.sh $(BIN) out/models $(MODELS)

models-save:
	scripts/train_models.sh save out/models $(MODELS_STATE)

models-status:
	@scripts/train_models.sh status out/models

# Regenerate docs/RESULTS.md and its plots from docs/results/*.json alone.
results: build
	$(BIN) experiment --results-only --results-dir docs/results --markdown docs/RESULTS.md

conformance: setup
	$(GO) test -run '^TestConformance$$' -timeout 60m ./autodiff -args -conformance.write=$(CURDIR)/docs/conformance.md

# -fuzzminimizetime: the engine minimizes every new interesting input for up
# to 60 s by default, and runs nothing else meanwhile (the long "0/sec"
# stretches of earlier runs); 3 s keeps short runs fuzzing.
fuzz: setup
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./onnxio

generate:
	@scripts/setup.sh --generate
	GOPATH="$$($(GO) env GOPATH)" $(GO) generate ./onnxio/...
	python3 tensor/internal/asmgen/vec.py
	python3 tensor/internal/asmgen/planes3x3.py

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Exports the --subset of torchvision models (48, ~1.4 GB, into TV_DIR, not
# the repository) and runs `check` on each; then run the Go tests on them
# with CSAM_TORCHVISION_DIR=$(TV_DIR). TV_FLAGS="--subset --more" adds 22
# exports of eleven other classifiers (ConvNeXt, ViT, Swin, ...; ~1.5 GB).
TV_FLAGS ?= --subset
check-torchvision: build
	/usr/bin/python3 scripts/torchvision_exports.py $(TV_DIR) $(TV_FLAGS) --check $(BIN) --table $(TV_DIR)/check.tsv
	CSAM_TORCHVISION_DIR=$(TV_DIR) $(GO) test -run '^TestTorchvisionExports$$' -timeout 60m ./internal/cli

clean:
	rm -rf bin
