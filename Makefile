# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONF ?= conf/local.yaml
SAMPLE ?= data/sample

.PHONY: install demo test bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch goes first and pinned, so the project's torch range is already met and no other build is pulled in.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/corpuslake demo --conf $(CONF)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/ingest.py
	$(PY) bench/clean.py
	$(PY) bench/score.py
	$(PY) bench/aggregate.py

clean:
	rm -rf lakehouse export $(SAMPLE) .pytest_cache .cache/models
