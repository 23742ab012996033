# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8080

.PHONY: run test bench clean venv

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

clean:
	rm -rf $(VENV) offline-cluster *.egg-info
