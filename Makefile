# The two commands of the README Quickstart: `make demo` and `make test`.
# Both create .venv when missing, install pinned versions (constraints.txt) and
# are idempotent: a second run reuses the environment and local state.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Library packages checked by mypy --strict; tests and benchmarks are linted only.
LIB_PACKAGES := aiserving inference_services
# Debian packages the tests run for real (command name:package name).
SYSTEM_TOOLS := docker-registry:docker-registry skopeo:skopeo buildah:buildah prometheus:prometheus \
	busybox:busybox-static java:openjdk-17-jre-headless

.PHONY: test demo lint format system-deps constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.py constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

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
	$(BIN)/mypy $(LIB_PACKAGES)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) system-deps lint
	$(BIN)/pytest

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

clean:
	rm -rf $(VENV) .aiserving .pytest_cache .mypy_cache .ruff_cache
