# otachain: convenience wrapper around Meson/Ninja and the test suites.
#
#   make check    deps, lint, ASan+UBSan build (with test hooks), unit, system+interop, fuzz
#   make demo     deps, release build, scripts/demo
#   make help     all targets
#
# Build directories: build/ (release, no test hooks), build-asan/ (debug,
# ASan+UBSan, test hooks: include/otachain/test_hooks.h), build-cut/
# (optimised, test hooks, no sanitizer, no unit tests: the programs the
# power-cut tests cut at every step, tests/system/test_power_cut.py),
# build-fuzz/ (clang, libFuzzer harnesses).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := build

MESON ?= meson
NINJA ?= ninja
CLANG_FORMAT ?= clang-format
# Debian's python3 with python3-pytest (a pyenv python3 may come first in PATH).
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 30
# pytest-xdist workers for the process-level suites (they mostly wait on
# servers and child processes, so one more worker than cores pays off).
PYTEST_WORKERS ?= 3

SUDO := $(shell if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then echo sudo; fi)

# C sources formatted by `make format` (node_modules and fuzz corpora excluded).
FORMAT_DIRS := include lib programs tests fuzz bench
format_files = $(shell find $(wildcard $(FORMAT_DIRS)) \( -name node_modules -o -path fuzz/corpus \) -prune \
                 -o -type f \( -name '*.c' -o -name '*.h' \) -print 2>/dev/null | sort)

# $(call meson_setup,DIR,OPTIONS): configure DIR, or reconfigure it with
# OPTIONS, so a build directory always has the flavour its name promises
# even if someone configured it by hand.
define meson_setup
	if [ -f $(1)/build.ninja ]; then $(MESON) setup --reconfigure $(1) $(2) >/dev/null; \
	else $(MESON) setup $(1) $(2); fi
endef

.PHONY: help deps build build-asan build-cut build-fuzz lint format unit system fuzz check demo bench clean

help:
	@echo "targets:"
	@echo "  deps        install missing Debian packages and test npm modules (scripts/install-deps)"
	@echo "  build       release build in build/"
	@echo "  build-asan  debug build with ASan+UBSan and test hooks in build-asan/"
	@echo "  build-cut   optimised build with test hooks, no sanitizer, in build-cut/ (power-cut tests)"
	@echo "  build-fuzz  clang libFuzzer harnesses in build-fuzz/"
	@echo "  lint        banned functions + clang-format check (scripts/lint)"
	@echo "  format      clang-format -i on all C sources"
	@echo "  unit        cmocka unit tests (build-asan)"
	@echo "  system      pytest process-level and interop suites against build-asan"
	@echo "              (PYTEST_WORKERS parallel workers, default 3)"
	@echo "  fuzz        run each fuzzer on a copy of its corpus: FUZZ_SECONDS (default 30) if it"
	@echo "              changed recently, 5 s otherwise; FUZZ_ALL=1 for all (scripts/fuzz)"
	@echo "  check       deps lint build-asan unit system (builds build-cut) build-fuzz fuzz"
	@echo "  demo        deps build, then scripts/demo"
	@echo "  bench       deps build, then bench/run"
	@echo "  clean       remove build directories"

deps:
	$(SUDO) scripts/install-deps

build:
	$(call meson_setup,build,-Dbuildtype=release -Dtest_hooks=false)
	$(NINJA) -C build

build-asan:
	$(call meson_setup,build-asan,-Dbuildtype=debug -Dtest_hooks=true -Db_sanitize=address$(,)undefined -Db_lundef=false \
	  '-Dc_args=-fno-sanitize-recover=all -fno-omit-frame-pointer')
	$(NINJA) -C build-asan

build-cut:
	$(call meson_setup,build-cut,-Dbuildtype=release -Dtest_hooks=true -Dtests=false)
	$(NINJA) -C build-cut

build-fuzz:
	export CC=clang; $(call meson_setup,build-fuzz,-Dbuildtype=debug -Dfuzz=true -Dtests=false -Dtest_hooks=false)
	$(NINJA) -C build-fuzz

lint:
	CLANG_FORMAT=$(CLANG_FORMAT) scripts/lint

format:
	$(if $(strip $(format_files)),$(CLANG_FORMAT) -i $(format_files),@echo "format: no C files")

unit: build-asan
	$(MESON) test -C build-asan --print-errorlogs

# pytest exits 5 when it collects nothing: fine while no test file exists,
# a failure as soon as one does (a broken collection must not pass).
system: build-asan build-cut
	@tests=$$(find tests/system tests/interop -name node_modules -prune -o -name 'test_*.py' -print 2>/dev/null); \
	rc=0; \
	OTACHAIN_BIN_DIR=$(abspath build-asan) \
	OTACHAIN_POWER_CUT_BIN_DIR=$(abspath build-cut) \
	ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTHON) -m pytest -q -n $(PYTEST_WORKERS) --junitxml=build-asan/pytest-junit.xml tests/system tests/interop || rc=$$?; \
	if [ $$rc -eq 5 ] && [ -z "$$tests" ]; then echo "system: no tests yet"; rc=0; fi; \
	exit $$rc

# Each harness runs on a temporary copy of its corpus, FUZZ_SECONDS when it
# (or the library code it includes) changed recently, less otherwise:
# scripts/fuzz says how it decides. FUZZ_ALL=1 gives every harness
# FUZZ_SECONDS.
fuzz: build-fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz

# The closing line counts tests: unit suites (meson), pytest cases and
# fuzz harnesses. It is printed only when every step passed (the first
# failure stops make), so the failed count is 0 by construction.
check: deps lint build-asan unit system build-fuzz fuzz
	@unit=$$($(MESON) test -C build-asan --list 2>/dev/null | grep -v '^ninja:' | grep -c .); \
	sys=$$(grep -o 'tests="[0-9]*"' build-asan/pytest-junit.xml | head -1 | tr -dc 0-9); \
	skipped=$$(grep -o 'skipped="[0-9]*"' build-asan/pytest-junit.xml | head -1 | tr -dc 0-9); \
	fz=$$(ls fuzz/fuzz_*.c 2>/dev/null | wc -l); \
	echo "check: $$unit unit suites, $$((sys - skipped)) system/interop tests, $$fz fuzzers"; \
	echo "$$((unit + sys - skipped + fz)) passed, 0 failed, $${skipped:-0} skipped"

demo: deps build
	@if [ ! -x scripts/demo ]; then echo "demo: scripts/demo does not exist yet"; exit 1; fi
	OTACHAIN_BIN_DIR=$(abspath build) scripts/demo

bench: deps build
	$(SUDO) scripts/install-deps --bench
	@if [ -x bench/run ]; then OTACHAIN_BIN_DIR=$(abspath build) bench/run; \
	else echo "bench: bench/run does not exist yet"; fi

clean:
	rm -rf build build-asan build-cut build-fuzz .pytest_cache
	find . -name node_modules -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

# A comma for use inside $(call ...) arguments.
, := ,
