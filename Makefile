# `make run` and `make test` install whatever is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

NODE_DEPS := tests/bpmnio/node_modules/.package-lock.json
# The pages' browser assets (web/): bpmn-js, its properties panel, bpmnlint, bundled by
# esbuild into web/static/dist (git-ignored, packaged into the wheel); the service itself
# needs no Node.js. Rebuilt when a source, the lock or the lint rules change.
WEB_DEPS := web/node_modules/.package-lock.json
WEB_BUILT := web/static/dist/manifest.json
WEB_SOURCES := web/build.mjs .bpmnlintrc $(wildcard web/src/*.js web/src/*/*.js web/src/*.css)
# The browser tests drive Debian's Chromium (Playwright never downloads one).
CHROMIUM := /usr/bin/chromium
# pytest-xdist processes for `make test`; the scheduler tests have Redis databases for 5.
TEST_PROCESSES ?= 2

.PHONY: install run test bench clean chromium

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

$(WEB_DEPS): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: building the pages' assets needs Node.js"; exit 1; }
	npm ci --prefix web --no-audit --no-fund --loglevel=error

$(WEB_BUILT): $(WEB_DEPS) $(WEB_SOURCES)
	node web/build.mjs

install: $(STAMP) $(NODE_DEPS) $(WEB_BUILT)

chromium:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
		else echo "$(CHROMIUM) is missing: the browser tests need Debian's chromium (sudo apt-get install chromium)"; exit 1; fi; }

run: $(STAMP) $(WEB_BUILT)
	$(BIN)/pathway up

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	tests/bpmnio/node_modules/.bin/bpmnlint --max-warnings 0 bpmn/*.bpmn
	$(BIN)/pytest -q -n $(TEST_PROCESSES)

bench: install
	$(BIN)/python bench/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache pathway.db tests/bpmnio/node_modules \
		web/node_modules web/static/dist web/.generated
