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

# The GPU check: `make gpu-prep` here (it needs ../shared/data and the built extension), then on
# a bare GPU machine with torch/transformers/peft, carrying .gpu and the extension, `make
# gpu-check`. `make gpu-check-cpu` runs the same phases with tiny shapes on the CPU.
GPU_DATA := data/cmexam data/cmtmedqa data/disc_med_sft data/meddialog_covid/COVID-Dialogue-Dataset-English.txt

.PHONY: gpu-prep
gpu-prep: ## pack what gpu-check needs on a bare GPU machine: the extension and the real texts
	$(PYTHON) -m maturin develop --release
	mkdir -p .gpu
	tar -C ../shared -cf .gpu/shared-data.tar $(GPU_DATA) "data/toyhom_cmdd/样例_内科5000-6000.csv"
	@ls -la .gpu python/csft_data/_core*.so

.PHONY: gpu-check
gpu-check: ## on a GPU box: CUDA tests, train (0.5B full, 7B LoRA) and CMB eval benches; JSON + log in $$OUT or gpu-check/
	$(PYTHON) benches/gpu_check.py --out "$${OUT:-gpu-check}"

.PHONY: gpu-check-cpu
gpu-check-cpu: ## the gpu-check phases with tiny shapes on the CPU (checks the check)
	$(PYTHON) benches/gpu_check.py --cpu --out gpu-check

.PHONY: bench
bench: ## benchmarks against the peers (OpenCC, datasketch, rensa, HF tokenizers, ...): MB/s, ratios, peak memory
	$(PYTHON) benches/bench_convert.py
	$(PYTHON) benches/bench_read.py
	$(PYTHON) benches/bench_dedup.py
	$(PYTHON) benches/bench_lengths.py
	$(PYTHON) benches/bench_build.py
	$(PYTHON) benches/bench_eval.py --shape tiny --items 200
	$(PYTHON) benches/bench_train.py --tiny
