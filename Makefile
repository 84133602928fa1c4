# The two commands a newcomer runs: `make demo` and `make test`.
VENV := .venv/bin

.PHONY: setup setup-docker setup-postgres setup-node demo test lint typecheck protos protos-check bench clean

setup:
	@bash scripts/setup.sh

# Docker's engine, gVisor, the offline base and the sandbox image (root; idempotent).
setup-docker: setup
	@bash scripts/setup_docker.sh

# PostgreSQL's binaries, for the registry tests' private server (root; idempotent).
setup-postgres:
	@bash scripts/setup_postgres.sh

# Node.js and the pinned gRPC packages of the interoperability test's client (idempotent).
setup-node:
	@bash scripts/setup_node.sh

demo: setup
	$(VENV)/latm models fetch qwen2.5-coder-0.5b
	$(VENV)/latm demo

test: setup setup-docker setup-postgres setup-node lint typecheck
	$(VENV)/pytest

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check orchestrator sandbox tests bench scripts clients

typecheck: setup
	$(VENV)/mypy orchestrator sandbox scripts bench tests clients/python/src

protos: setup
	$(VENV)/python scripts/gen_protos.py

protos-check: setup
	$(VENV)/python scripts/gen_protos.py --check

bench:
	LATM_EXTRAS=dev,local,bench bash scripts/setup.sh
	bash scripts/setup_docker.sh
	$(VENV)/python bench/sandbox_latency.py
	$(VENV)/python bench/docker_sandbox.py
	$(VENV)/python bench/models.py
	$(VENV)/python bench/engine.py
	$(VENV)/python bench/api_load.py
	$(VENV)/python bench/soak.py
	$(VENV)/python bench/tripwire.py
	$(VENV)/python bench/healing.py

clean:
	rm -rf .venv build *.egg-info .mypy_cache .ruff_cache .pytest_cache
