# `make demo` and `make test` do all set-up on a fresh Debian 12 machine: the Debian packages
# (when run as root; otherwise the missing ones are named), a virtual environment in .venv,
# and an editable install that compiles the OpenSSL/libnghttp2 binding.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Build: compiler, headers, venv. Tests: the real clients and tools the suite drives.
APT_BUILD := build-essential python3-dev python3-venv libssl-dev libnghttp2-dev
APT_TEST := openssl curl nghttp2-client chromium tshark nginx
APT_BENCH := nginx haproxy wrk
APT_PACKAGES := $(APT_BUILD) $(APT_TEST)

DEMO_ARGS ?= --https-port 8443 --http-port 8080 --admin-port 9900

.PHONY: demo test bench example example-certs system-deps print-apt-packages clean

demo: $(STAMP)
	$(BIN)/albatross demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The full example configuration (examples/config-example.yaml): its certificates, OCSP staple
# and ticket keys, then `albatross check` on it.
example-certs: $(STAMP)
	$(BIN)/python examples/make_certs.py examples

example: example-certs
	$(BIN)/albatross check examples/config-example.yaml

bench: $(STAMP)
	$(MAKE) system-deps APT_PACKAGES="$(APT_PACKAGES) $(APT_BENCH)"
	$(BIN)/python bench/handshake.py
	$(BIN)/python bench/proxy.py

$(STAMP): pyproject.toml setup.py $(wildcard src/_albatross_cffi/*.py src/_albatross_cffi/*.c src/_albatross_cffi/*.h)
	$(MAKE) system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
	  echo "missing Debian packages:$$missing"; \
	  echo "install them with: sudo apt-get install$$missing"; exit 1; \
	fi

print-apt-packages:
	@echo $(APT_PACKAGES)

clean:
	rm -rf $(VENV) build src/*.egg-info src/albatross/_native*.so
