# asg developer tasks. `make help` lists them.
CARGO ?= cargo
VENV  := .venv

.PHONY: help build venv test-e2e-mock

help:
	@echo "make build          cargo build --workspace --bins (asg, mock-upstream)"
	@echo "make venv           create/update .venv from tests/python/requirements.txt"
	@echo "make test-e2e-mock  build, then the mock/harness tests: cargo test -p asg-e2e + pytest tests/python"

build:
	$(CARGO) build --workspace --bins

venv:
	@tests/python/setup_venv.sh

test-e2e-mock: build venv
	$(CARGO) test -p asg-e2e
	$(VENV)/bin/pytest -q tests/python
