# cryptcount: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
DEBUG_BIN := .build/debug/cryptcount
RELEASE_BIN := .build/release/cryptcount
# libre2-dev: the regular-expression engine (Sources/CRE2Shim); ripgrep: the differential test's oracle.
APT_PACKAGES := libmsgpack-dev libre2-dev pkg-config openssl ripgrep
PIP_PACKAGES := msgpack pytest jsonschema cryptography pyrage tqdm hypothesis dask distributed

.PHONY: all deps build release test swift-test py-test demo bench bench-deps fuzz soak format lint clean

all: build

# Installs what the build and the tests need (root, or sudo, for apt).
deps:
	@if ! pkg-config --exists msgpack re2 2>/dev/null || ! command -v openssl >/dev/null || ! command -v rg >/dev/null; then \
	  echo "installing $(APT_PACKAGES)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@$(PYTHON) -c "import msgpack, pytest, jsonschema, cryptography, pyrage, tqdm, hypothesis, dask, distributed" 2>/dev/null || \
	  $(PYTHON) -m pip install -q --disable-pip-version-check $(PIP_PACKAGES)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# All tests: the Swift suites (unit, end-to-end over pipes, golden files), then the Python ones.
test: deps
	$(SWIFT) build
	CRYPTCOUNT_BIN=$(abspath $(DEBUG_BIN)) $(SWIFT) test
	$(MAKE) py-test BIN=$(abspath $(DEBUG_BIN))

BIN ?= $(abspath $(RELEASE_BIN))
py-test:
	@set -e; dirs=""; \
	for d in examples/python/tests Tests/python Tests/Golden examples/shell; do [ -d $$d ] && dirs="$$dirs $$d"; done; \
	if [ -n "$$dirs" ]; then \
	  CRYPTCOUNT_BIN=$(BIN) PYTHONPATH=$(abspath examples/python) $(PYTHON) -m pytest -q --rootdir $(CURDIR) $$dirs; \
	else echo "no python tests"; fi

# Builds in release mode and searches a sample diary through the Python driver.
demo: release
	CRYPTCOUNT_BIN=$(abspath $(RELEASE_BIN)) PYTHONPATH=$(abspath examples/python) $(PYTHON) examples/python/diary_demo.py

# Benchmarks also need ripgrep and age (apt) and numpy (pip, to generate the corpora).
bench-deps: deps
	@command -v rg >/dev/null && command -v age >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ripgrep age; }
	@$(PYTHON) -c "import numpy" 2>/dev/null || $(PYTHON) -m pip install -q --disable-pip-version-check numpy

bench: release bench-deps
	@if [ -f Benchmarks/run.py ]; then $(PYTHON) Benchmarks/run.py --bin $(abspath $(RELEASE_BIN)); else echo "no benchmarks yet"; fi
	CRYPTCOUNT_BIN=$(abspath $(RELEASE_BIN)) PYTHONPATH=$(abspath examples/python) $(PYTHON) examples/python/bench_roundtrip.py

# libFuzzer targets (a package of their own under Fuzz/, built with -sanitize=fuzzer,address)
# and the black-box fuzzer, for FUZZ_SECONDS in all. Inputs that crash or break an invariant are
# kept in Tests/Fuzz/corpus-crashers/<target>/, which `make test` replays.
FUZZ_SECONDS ?= 240
fuzz: build
	cd Fuzz && $(SWIFT) build -c release --sanitize fuzzer --sanitize address
	CRYPTCOUNT_BIN=$(abspath $(DEBUG_BIN)) FUZZ_SECONDS=$(FUZZ_SECONDS) $(PYTHON) Fuzz/run.py

# A long mixed load (queries, cancels, hostile frames) on one process: invariant and flat RSS.
SOAK_SECONDS ?= 180
soak: release
	CRYPTCOUNT_BIN=$(abspath $(RELEASE_BIN)) $(PYTHON) Tests/python/soak.py --seconds $(SOAK_SECONDS)

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

lint:
	$(SWIFT) format lint --recursive Sources Tests Package.swift

clean:
	rm -rf .build
