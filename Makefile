# make serve  - run the echo server with its browser page (HOST, PORT, VERSIONS may be set)
# make test   - lint, type-check and run every test, interop peers included
# make autobahn - run Autobahn|Testsuite against hybi's server and client, print a summary of each
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST     ?= 127.0.0.1
PORT     ?= 8765
VERSIONS ?= 13,8,7

.PHONY: serve test lint typecheck pytest peers autobahn bench clean fuzz

$(VENV)/.runtime: pyproject.toml setup.py src/hybi/_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
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
	$(BIN)/ruff check src tests interop
	$(BIN)/ruff format --check src tests interop

typecheck: $(VENV)/.test
	$(BIN)/mypy

pytest: $(VENV)/.test peers
	HYBI_REQUIRE_INTEROP=1 HYBI_REQUIRE_ACCEL=$$(command -v cc >/dev/null && echo 1) $(BIN)/python -m pytest
	@echo "pytest again on the pure-Python path (HYBI_PURE_PYTHON=1), interop peers aside:"
	HYBI_PURE_PYTHON=1 $(BIN)/python -m pytest -q -m 'not interop' --ignore=tests/interop

test: lint typecheck pytest

clean:
	rm -rf $(VENV) interop/node/node_modules interop/java/build interop/autobahn/reports .pytest_cache .mypy_cache .ruff_cache .hypothesis

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
