# The two commands of the README Quickstart: `make demo` and `make test`.
# Both create .venv when missing, install pinned versions (constraints.txt) and
# are idempotent: a second run reuses the environment and local state.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Library packages checked by mypy --strict; tests and benchmarks are linted only.
LIB_PACKAGES := serving_core mlflow_source model_packaging oci_images inference_services model_wrappers gpu_planning progressive_delivery batch_jobs aiserving components pipelines
# Debian packages the tests run for real (command name:package name).
SYSTEM_TOOLS := docker-registry:docker-registry skopeo:skopeo buildah:buildah prometheus:prometheus \
	busybox:busybox-static java:openjdk-17-jre-headless chromium:chromium \
	podman:podman runc:runc debootstrap:debootstrap npm:npm

.PHONY: test test-cluster-path demo lint format system-deps constraints clean triton-validator bench-serving bench-deps n8n-runtime

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.py constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# nvidia-pytriton pins numpy<2, so its bundled tritonserver (our config.pbtxt validator) gets its own venv.
TRITON_VENV := .venv-triton
$(TRITON_VENV)/.installed:
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install --quiet 'nvidia-pytriton==0.7.0'
	touch $@

triton-validator: $(TRITON_VENV)/.installed

system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "The tests need these Debian packages; install them as root, then rerun:"; \
			echo "  sudo apt-get update && sudo apt-get install -y$$missing"; \
			exit 1; \
		fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(LIB_PACKAGES)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The real n8n the workflow tests run examples/n8n/ in (docs/n8n.md): pinned by tests/support/n8n/,
# installed with npm into ~/.cache/aiserving/n8n once per pin.
n8n-runtime: $(STAMP) system-deps
	$(BIN)/python -m tests.support.n8n_server

# Everything, the cluster path included: its tests run last, their components image built meanwhile.
test: $(STAMP) system-deps triton-validator n8n-runtime lint
	$(BIN)/pytest

# Only what a cluster runs: the components image with every runtime, and deploy-model with each task in its
# container through KFP's DockerRunner (docs/images.md).
test-cluster-path: $(STAMP) system-deps triton-validator
	$(BIN)/pytest -m cluster_path

demo: $(STAMP)
	$(BIN)/aiserving demo

# Regenerate constraints.txt from a clean resolve of setup.py (keeps the header).
constraints:
	rm -rf /tmp/aiserving-constraints-venv
	$(PYTHON) -m venv /tmp/aiserving-constraints-venv
	/tmp/aiserving-constraints-venv/bin/pip install --quiet '.[dev]'
	{ sed '/^[^#]/,$$d' constraints.txt; /tmp/aiserving-constraints-venv/bin/pip freeze --exclude creativeflow-ai-serving \
		| sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# The modelcar base image's build context needs Debian's static busybox (images/modelcar-base/Dockerfile).
images/modelcar-base/busybox: system-deps
	cp "$$(command -v busybox)" $@
# Peers for benchmarks/serving.py, each in its own venv: mlserver 1.7.1 needs fastapi<0.116 and cannot share
# .venv with kserve 0.21; BentoML and Ray Serve bring their own pins too. mlflow, scikit-learn and cloudpickle
# match constraints.txt so every server unpickles the same model.
PEER_PINS = mlflow==$$(sed -n 's/^mlflow==//p' constraints.txt) scikit-learn==$$(sed -n 's/^scikit-learn==//p' constraints.txt) \
	cloudpickle==$$(sed -n 's/^cloudpickle==//p' constraints.txt)
MLSERVER_VENV := .venv-mlserver
$(MLSERVER_VENV)/.installed:
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install --quiet --upgrade pip
	$(MLSERVER_VENV)/bin/pip install --quiet mlserver==1.7.1 mlserver-mlflow==1.7.1 $(PEER_PINS)
	touch $@
$(MLSERVER_VENV): $(MLSERVER_VENV)/.installed
BENTOML_VENV := .venv-bentoml
$(BENTOML_VENV)/.installed:
	$(PYTHON) -m venv $(BENTOML_VENV)
	$(BENTOML_VENV)/bin/pip install --quiet --upgrade pip
	$(BENTOML_VENV)/bin/pip install --quiet bentoml==1.4.40 $(PEER_PINS)
	touch $@
RAY_VENV := .venv-ray
$(RAY_VENV)/.installed:
	$(PYTHON) -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/pip install --quiet --upgrade pip
	$(RAY_VENV)/bin/pip install --quiet "ray[serve]==2.60.0" $(PEER_PINS)
	touch $@

# wrk (Debian) is the benchmark's load generator: installed as root, otherwise named with the command.
bench-deps:
	@if ! command -v wrk >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian package: wrk"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
		else \
			echo "The serving benchmark needs wrk; install it as root, then rerun:"; \
			echo "  sudo apt-get update && sudo apt-get install -y wrk"; \
			exit 1; \
		fi; \
	fi

# The serving benchmark (not part of `make test`): prints req/s, rows/s, p50/p99 and ratios.
# BENCH_ARGS picks servers and cases, e.g. BENCH_ARGS="--servers wrapper-on bentoml-on --rows 1".
bench-serving: $(STAMP) bench-deps $(MLSERVER_VENV)/.installed $(BENTOML_VENV)/.installed $(RAY_VENV)/.installed
	$(BIN)/python -m benchmarks.serving $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TRITON_VENV) .aiserving .pytest_cache .mypy_cache .ruff_cache
