# The few commands a newcomer needs. Each starts from a fresh clone: the first creates .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help venv original verify site test bench clean

help:
	@echo "make site      fetch the missing releases, verify them, build the annotated site (_build/site)"
	@echo "make original  fetch the missing releases into original/ and verify them"
	@echo "make test      run the test suite"
	@echo "make bench     run the benchmarks (timings live here, not in the tests)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

original: venv
	$(BIN)/python -m archive fetch

verify: venv
	$(BIN)/python -m archive verify

site: original
	$(BIN)/python -m sphinx -b html -j auto -W --keep-going -c . -d _build/doctrees docs _build/site
	$(BIN)/python -m archive.sphinxext.fulltext _build/site   # Pagefind: full-text search of the code
	@echo "site: open _build/site/index.html"

test: venv
	$(BIN)/python -m pytest -n auto --dist loadgroup

bench: venv
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.networks
	$(BIN)/python -m benchmarks.parallel
	$(BIN)/python -m benchmarks.feed
	$(BIN)/python -m benchmarks.launches

clean:
	rm -rf _build .pytest_cache
