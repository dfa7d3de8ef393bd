# One entry point for developers and CI. `make help` lists the targets.
.DEFAULT_GOAL := help
PYTHON ?= python3
export CARGO_TERM_COLOR ?= never

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: install
install: ## install csft-data with test extras (release Rust build)
	$(PYTHON) -m pip install -e '.[dev]' -e ./training

.PHONY: dev
dev: ## rebuild the extension in place after Rust changes (release)
	$(PYTHON) -m maturin develop --release --extras dev

.PHONY: test-rust
test-rust: ## Rust unit tests (no Python needed)
	cargo test --lib --locked

.PHONY: test-python
test-python: ## pytest suite
	$(PYTHON) -m pytest -q

.PHONY: test
test: test-rust test-python ## all tests

.PHONY: llamafactory
llamafactory: ## make .venv-lf with the real LLaMA-Factory 0.9.5, for tests/test_llamafactory.py
	tests/llamafactory/make_venv.sh $(PYTHON) .venv-lf
	@echo "now: export CSFT_LLAMAFACTORY_PYTHON=$$PWD/.venv-lf/bin/python; make test"

.PHONY: lint
lint: ## rustfmt, clippy, ruff, mypy, stubtest
	cargo fmt --check
	cargo clippy --all-targets --features python --locked -- -D warnings
	$(PYTHON) -m ruff check python training tests benches
	$(PYTHON) -m ruff format --check python training tests benches
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest csft_data._core

.PHONY: format
format: ## apply rustfmt and ruff format
	cargo fmt
	$(PYTHON) -m ruff format python training tests benches
	$(PYTHON) -m ruff check --fix python training tests benches

.PHONY: bench
bench: ## benchmarks against the peers (OpenCC, datasketch, rensa, HF tokenizers, ...): MB/s, ratios, peak memory
	$(PYTHON) benches/bench_convert.py
	$(PYTHON) benches/bench_read.py
	$(PYTHON) benches/bench_dedup.py
	$(PYTHON) benches/bench_lengths.py
	$(PYTHON) benches/bench_build.py
	$(PYTHON) benches/bench_eval.py --shape tiny --items 200
	$(PYTHON) benches/bench_train.py --tiny
