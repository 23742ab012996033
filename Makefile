# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8080

.PHONY: run test bench fuzz clean venv

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.py setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

## Serve the API with gunicorn on $(PORT); without a cluster it uses the offline folder backend.
run: $(STAMP)
	RUNAI_SUBMIT_PORT=$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

## Run the whole test suite: the fake API server, and a real control plane when one can be had
## (RUNAI_SUBMIT_TEST_KUBECONFIG, else ../shared/kube started for the run; skipped otherwise).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## Benchmark: the service beside its floor (the same manifests POSTed straight to the API server), against the
## real control plane of ../shared/kube when present, else the fake (BENCH_ARGS=--quick | --soak | --kubeconfig K)
bench: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(PY) -m bench $(BENCH_ARGS)

## Fuzz the API against its own OpenAPI document (schemathesis, every check, positive and negative data):
## FUZZ_EXAMPLES per operation and mode, against the fake API server and the real control plane (../shared/kube,
## or RUNAI_SUBMIT_TEST_KUBECONFIG) when there is one. Prints the counts; reports in fuzz-report/.
FUZZ_EXAMPLES ?= 900
fuzz: $(STAMP)
	rm -rf fuzz-report && mkdir -p fuzz-report
	RUNAI_SUBMIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) RUNAI_SUBMIT_FUZZ_BACKENDS=fake,real \
	  RUNAI_SUBMIT_FUZZ_REPORT=fuzz-report/fuzz $(PY) -m pytest tests/test_openapi_fuzz.py -o timeout=0 \
	  $(PYTEST_ARGS); status=$$?; $(PY) -m tests.fuzzing fuzz-report/fuzz.*.json; exit $$status

clean:
	rm -rf $(VENV) offline-cluster fuzz-report *.egg-info
