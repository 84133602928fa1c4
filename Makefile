# The two commands a newcomer runs: `make demo` and `make test`.
VENV := .venv/bin

.PHONY: setup demo test lint typecheck protos protos-check bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/latm demo

test: setup lint typecheck
	$(VENV)/pytest

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check orchestrator sandbox tests bench scripts

typecheck: setup
	$(VENV)/mypy orchestrator sandbox scripts bench tests

protos: setup
	$(VENV)/python scripts/gen_protos.py

protos-check: setup
	$(VENV)/python scripts/gen_protos.py --check

bench:
	LATM_EXTRAS=dev,bench bash scripts/setup.sh
	$(VENV)/python bench/sandbox_latency.py

clean:
	rm -rf .venv build *.egg-info .mypy_cache .ruff_cache .pytest_cache
