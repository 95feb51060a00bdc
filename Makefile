# Two commands for a fresh machine with only Python 3:
#   make test   - own virtualenvs, ruff, mypy, the docs build, the whole suite on the newest Airflow and on the floor
#   make demo   - the flagship example DAG end to end against the local simulator
PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
AIRFLOW_FLOOR ?= 3.1.8
VENV ?= .venv
VENV_FLOOR ?= .venv-floor
PYTEST_ARGS ?=

.PHONY: test lint typecheck unit floor chaos clean demo docs

# The two Airflow legs run side by side, each leg's output printed whole when it ends (-O): on these
# 2-core machines that keeps make test within 15 minutes (one after the other: about 15.5). The docs
# build (15-45 s) takes the slot the shorter floor leg frees, so it adds nothing to the wall time.
test: lint typecheck
	$(MAKE) --no-print-directory -j2 --output-sync=target unit floor docs

$(VENV)/.installed-$(AIRFLOW_VERSION): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]"
	touch $@

$(VENV_FLOOR)/.installed-$(AIRFLOW_FLOOR): pyproject.toml
	$(PYTHON) -m venv $(VENV_FLOOR)
	$(VENV_FLOOR)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_FLOOR)/bin/python -m pip install --quiet "apache-airflow==$(AIRFLOW_FLOOR)" -e ".[dev]"
	touch $@

lint: $(VENV)/.installed-$(AIRFLOW_VERSION)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-$(AIRFLOW_VERSION)
	$(VENV)/bin/mypy

unit: $(VENV)/.installed-$(AIRFLOW_VERSION)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The floor runs every test but the end-to-end DAG runs (e2e, chaos): those drive the same provider
# code through dag.test() and would double CI time; they run on the newest Airflow above.
floor: $(VENV_FLOOR)/.installed-$(AIRFLOW_FLOOR)
	$(VENV_FLOOR)/bin/python -m pytest -q -p no:cacheprovider -m "not e2e and not chaos" $(PYTEST_ARGS)

# The full chaos set: every example DAG under seeded faults, 20 seeds each (CI runs 1); one line per run
# and the totals (faults per kind, requests, creations, digests checked) are printed at the end.
chaos: $(VENV)/.installed-$(AIRFLOW_VERSION)
	PIXXEL_CHAOS_SEEDS=20 $(VENV)/bin/python -m pytest -m chaos -p no:cacheprovider tests/reliability/test_chaos.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VENV_FLOOR) .mypy_cache .ruff_cache .pytest_cache docs/_build

# The documentation (Sphinx, MyST pages, API reference from the docstrings) with every warning an error:
# a broken include, a moved example marker or a docstring Sphinx cannot read fails the build.
docs: $(VENV)/.installed-$(AIRFLOW_VERSION)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The benchmarks against the local simulator, one table at the end (BENCHMARKS.md); BENCH_ARGS=--quick for a smoke run.
BENCH_ARGS ?=
.PHONY: bench
bench: $(VENV)/.installed-$(AIRFLOW_VERSION)
	$(VENV)/bin/python -m benchmarks.run_all $(BENCH_ARGS)

# The flagship example DAG end to end against the local simulator (scripts/demo.py says what it does).
demo: $(VENV)/.installed-$(AIRFLOW_VERSION)
	$(VENV)/bin/python scripts/demo.py

# Real Airflow deployments (DEPLOYMENT.md). Their own venv, so make test's venvs stay as they are: the
# same Airflow plus what the distributed form needs (CeleryExecutor, PostgreSQL drivers, s3fs behind
# ObjectStoragePath("s3://..."), moto's standalone S3 server, the Redis client). celery 5.7 dropped
# celery.backends.database.retry, which apache-airflow-providers-celery 3.26 imports: the worker won't start.
VENV_DEPLOY ?= .venv-deploy
DEPLOY_PACKAGES = "apache-airflow[celery,amazon,postgres]==$(AIRFLOW_VERSION)" "apache-airflow-providers-amazon[s3fs]" \
	psycopg2-binary "moto[server]" redis pillow "celery<5.7"
DEPLOY_ARGS ?=
.PHONY: airflow test-deployment

$(VENV_DEPLOY)/.installed-$(AIRFLOW_VERSION): pyproject.toml
	$(PYTHON) -m venv $(VENV_DEPLOY)
	$(VENV_DEPLOY)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_DEPLOY)/bin/python -m pip install --quiet $(DEPLOY_PACKAGES) -e .
	touch $@

# The example DAGs in a real Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor,
# SQLite) on the local simulator, in the foreground until Ctrl-C (scripts/airflow_local.py).
airflow: $(VENV)/.installed-$(AIRFLOW_VERSION)
	$(VENV)/bin/python scripts/airflow_local.py

# The provider in real deployments (tests/deployment/deployment_suite.py): make airflow's single machine,
# then PostgreSQL + CeleryExecutor/Redis + 2 workers + 2 triggerers + S3 (moto), with faults and every
# example DAG writing to s3://. Debian's redis-server is installed when absent (as root); without it, or
# without the PostgreSQL 15 server binaries, the distributed leg is skipped and says why. About 10 minutes
# on 2 busy cores (9 to 10 in the last three runs); a table at the end.
test-deployment: $(VENV_DEPLOY)/.installed-$(AIRFLOW_VERSION)
	@command -v redis-server >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	$(VENV_DEPLOY)/bin/python -m tests.deployment.deployment_suite $(DEPLOY_ARGS)
