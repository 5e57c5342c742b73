# `make run` and `make test` install whatever is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

NODE_DEPS := tests/bpmnio/node_modules/.package-lock.json
# pytest-xdist processes for `make test`; the scheduler tests have Redis databases for 5.
TEST_PROCESSES ?= 2

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# bpmn.io's packages (tests/bpmnio): bpmn-moddle, to check that bpmn.io keeps what the
# engine reads; bpmnlint; bpmn-js and puppeteer-core, to draw the README's pictures.
$(NODE_DEPS): tests/bpmnio/package.json tests/bpmnio/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: the bpmn.io tests and bpmnlint need Node.js"; exit 1; }
	npm ci --prefix tests/bpmnio --no-audit --no-fund --loglevel=error

install: $(STAMP) $(NODE_DEPS)

run: $(STAMP)
	$(BIN)/pathway up

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	tests/bpmnio/node_modules/.bin/bpmnlint --max-warnings 0 bpmn/*.bpmn
	$(BIN)/pytest -q -n $(TEST_PROCESSES)

bench: install
	$(BIN)/python bench/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache pathway.db tests/bpmnio/node_modules
