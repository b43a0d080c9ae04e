# make serve  - run the echo server with its browser page (HOST, PORT, VERSIONS may be set)
# make test   - lint, type-check and run every test, interop peers included
# make docs   - build the documentation site into site/ (open site/index.html), failing on any warning
# make autobahn - run Autobahn|Testsuite against hybi's server and client, print a summary of each
# make bench  - hybi against picows, websockets, aiohttp and raw TCP; writes docs/performance-results.md
#               (BENCH_QUICK=1: a one-minute smoke run; BENCH_ONLY=b32_c1_w1,hybi: only those)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST     ?= 127.0.0.1
PORT     ?= 8765
VERSIONS ?= 13,8,7

.PHONY: serve test docs lint typecheck pytest peers autobahn bench clean fuzz

$(VENV)/.runtime: pyproject.toml setup.py src/hybi/_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.docs: $(VENV)/.runtime pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

interop/node/node_modules/.installed: interop/node/package.json interop/java/NettyPeer.java scripts/install-peers.sh scripts/install-autobahn.sh
	bash scripts/install-peers.sh
	touch $@

serve: $(VENV)/.runtime
	$(BIN)/hybi serve --host $(HOST) --port $(PORT) --versions $(VERSIONS)

# Autobahn|Testsuite lives outside the repository: its script (a quick no-op once done) runs
# every time, so that an emptied cache is filled again.
peers: interop/node/node_modules/.installed
	bash scripts/install-autobahn.sh

autobahn: $(VENV)/.test
	bash scripts/install-autobahn.sh
	$(BIN)/python interop/autobahn/run.py both

lint: $(VENV)/.test
	$(BIN)/ruff check src tests interop bench examples
	$(BIN)/ruff format --check src tests interop bench examples

typecheck: $(VENV)/.test
	$(BIN)/mypy

pytest: $(VENV)/.test peers
	HYBI_REQUIRE_INTEROP=1 HYBI_REQUIRE_ACCEL=$$(command -v cc >/dev/null && echo 1) $(BIN)/python -m pytest
	@echo "pytest again on the pure-Python path (HYBI_PURE_PYTHON=1), interop peers aside:"
	HYBI_PURE_PYTHON=1 $(BIN)/python -m pytest -q -m 'not interop' --ignore=tests/interop

docs: $(VENV)/.docs
	$(BIN)/mkdocs build --strict

test: lint typecheck docs pytest

$(VENV)/.bench: $(VENV)/.runtime pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) site bench/build interop/node/node_modules interop/java/build interop/autobahn/reports .pytest_cache .mypy_cache .ruff_cache .hypothesis

# make fuzz   - coverage-guided fuzzing (atheris), FUZZ_RUNS inputs for every dialect, role and handshake;
#               crashes land in .fuzz/ as crash-* files: copy them into tests/fuzz/corpus/ to keep them
FUZZ_RUNS ?= 1000000
fuzz: $(VENV)/.test
	$(BIN)/python -m pip install --quiet 'atheris>=2.3'
	mkdir -p .fuzz
	for target in $$(cd tests && ../$(BIN)/python -c 'from fuzz.harness import TARGETS; print(" ".join(TARGETS))'); do \
	    work=.fuzz/$$(echo $$target | tr / -); mkdir -p $$work; \
	    echo "fuzz: $$target, $(FUZZ_RUNS) inputs"; \
	    HYBI_FUZZ_TARGET=$$target $(BIN)/python tests/fuzz/run_atheris.py -runs=$(FUZZ_RUNS) -max_len=4096 \
	        -artifact_prefix=.fuzz/ -print_final_stats=1 $$work tests/fuzz/corpus 2>&1 | grep -E '^(Done|==|stat::number_of_executed_units)' || exit 1; \
	done
