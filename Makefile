# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS := .cache/jars
JARS_STAMP := $(JARS)/.fetched
CONF ?= conf/local.yaml
SAMPLE ?= data/sample

.PHONY: install demo test bench clean chromium report cluster-start cluster-stop

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch goes first and pinned, so the project's torch range is already met and no other build is pulled in.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Delta Lake's Spark jars, fetched once from Maven Central into the ignored .cache/jars (runs are offline
# after that). deps/pom.xml names the version; jobs.jars keeps only the jars pyspark does not ship.
$(JARS_STAMP): deps/pom.xml $(STAMP)
	mvn -q -B -f deps/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
	  -DoutputDirectory=$(CURDIR)/$(JARS)/maven
	$(PY) -m jobs.jars prune $(JARS)/maven $(JARS)
	touch $(JARS_STAMP)

install: $(STAMP) $(JARS_STAMP)

# Ends by writing the HTML report (reports/report.html) and printing its path.
demo: install
	$(VENV)/bin/corpuslake demo --conf $(CONF)

report: install
	$(VENV)/bin/corpuslake report --conf $(CONF) --out reports/report.html

# Headless Chromium (Debian package) renders the report for the screenshot test; best effort: without
# root or a Debian registry the test skips and says so.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1)) ; } || \
	  echo "chromium not installed: the report screenshot test will skip"

test: install chromium
	$(PY) -m pytest -q --durations=15

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/ingest.py
	$(PY) bench/clean.py
	$(PY) bench/score.py
	$(PY) bench/train.py
	$(PY) bench/aggregate.py

# A Spark standalone cluster on 127.0.0.1 (master spark://127.0.0.1:7077, web UI :8080, two workers of 1 core
# and 2g) from pyspark's own distribution; logs and pid files in .cache/cluster. Then:
# corpuslake run --master spark://127.0.0.1:7077
cluster-start: install
	$(PY) -m jobs.cluster start

cluster-stop:
	$(PY) -m jobs.cluster stop

clean:
	rm -rf lakehouse export reports $(SAMPLE) .pytest_cache .cache/models
