# Every entry point of the course. The first target that needs Python creates .venv
# (again whenever pyproject.toml or constraints.txt is newer than the last install).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader's commands call other console scripts (alembic): keep the venv first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# 2 cores on CI: two pytest workers, each kernel with one torch/BLAS thread, so that
# workers do not fight over the cores (oversubscribed torch is several times slower).
JOBS ?= 2
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: help venv system test test-suite test-fast lint build demo lab formgrader bench bench-grading clean

help:
	@echo "make demo   build the course and grade a demo class (the main job)"
	@echo "make test   lint and the whole test suite (unit, sync, notebooks, grading round-trip)"
	@echo "make test-fast  the tests that execute no notebook and grade no class (< 1 min)"
	@echo "make build  regenerate release/ and solutions/ from source/"
	@echo "make lab    the student's JupyterLab: release/ and solutions/, Validate"
	@echo "make formgrader  nbgrader's formgrader on the grading folder (instructors)"
	@echo "make bench  execution time of every solution notebook (median of 3)"
	@echo "make bench-grading  parallel grader against sequential nbgrader"
	@echo "make lint   ruff (lint and format) and mypy on the Python code"

venv: $(STAMP)

# bubblewrap (the grading sandbox), PostgreSQL (the shared gradebook's tests) and chromium
# (browser tests): installed where possible.
system:
	./scripts/system-packages --tests --browser

# uv installs the pinned set in well under a minute where pip takes about 2 minutes (CI's
# machine). The venv starts without pip (ensurepip takes 5 s of one core): the pip of the
# interpreter the venv was made from (not python3 on PATH, which starts with the venv's bin/)
# fetches uv into .venv/uv-bootstrap. Where that fails (no pip there, no uv for this
# platform), ensurepip and pip install everything. uv reads no pip configuration: pip's
# find-links (where a machine keeps wheels of its own, such as CI's local torch) are handed on.
#
# Then the venv's bytecode, as pip compiles it: sandboxed kernels see the venv read-only, and
# without .pyc files each of them would compile torch's and numpy's sources again (a
# fresh-clone `make test` took twice as long). All of it, not only what kernels import: where
# PYTHONDONTWRITEBYTECODE=1 (CI's machine), no process caches what it compiles, and each
# grader process compiled nbgrader's and SQLAlchemy's sources at its start (make test: 9:40
# instead of 7). All but the packages' own test suites (tests/, test/), which nothing here
# imports: 86 of the venv's 302 MB of bytecode, 10 of the 60 CPU-s that compiling it all
# (uv's --compile-bytecode) takes. A file that does not compile (torch ships one written for
# Python 3.12) is left out, as uv and pip leave it out.
BASE_PYTHON = $$($(BIN)/python -c 'import sys; print(sys._base_executable)')
FIND_LINKS = $${PIP_FIND_LINKS:-$$($(BASE_PYTHON) -m pip config get global.find-links 2>/dev/null)}
PIP_OPTIONS := --quiet --disable-pip-version-check -c constraints.txt
UV := $(VENV)/uv-bootstrap/bin/uv
SITE_PACKAGES = $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	( ( test -x $(UV) || PIP_ROOT_USER_ACTION=ignore $(BASE_PYTHON) -m pip install $(PIP_OPTIONS) --target $(VENV)/uv-bootstrap uv ) \
		&& UV_FIND_LINKS="$(FIND_LINKS)" $(UV) pip install --quiet --python $(BIN)/python \
			-c constraints.txt -e ".[dev]" ) \
	|| ( $(BIN)/python -m ensurepip --default-pip && $(BIN)/python -m pip install $(PIP_OPTIONS) -e ".[dev]" )
	$(BIN)/python -m compileall -q -j0 -x '/tests?/' "$(SITE_PACKAGES)" >/dev/null || true
	touch $(STAMP)

test:
	# The system packages and the venv at once: on a fresh machine apt-get installs chromium
	# and its libraries (half a minute, mostly waiting on the disk and the mirror) while uv
	# installs and compiles the venv.
	$(MAKE) --no-print-directory -j2 system venv
	# lint (mypy: half a minute of one core) beside the tests, which leave a core idle now and
	# then; a lint error fails `make test` when the tests are done. At a lower priority: it
	# takes those idle moments instead of slowing the shared fixtures that every test waits for.
	$(MAKE) --no-print-directory -j2 LINT_NICE="nice -n 10" lint test-suite

# The tests alone (what `make test` runs beside lint).
# The course's own modules compiled where PYTHONDONTWRITEBYTECODE=1 keeps processes from caching
# them: each grader process compiled grader/ anew at its start (0.4 s of CPU, a few hundred
# processes per `make test`), and sandboxed kernels, which see the repository read-only,
# course/. Stale .pyc files after an edit are only compiled again, in memory.
OWN_BYTECODE := $(BIN)/python -m compileall -q -j0 grader course tests >/dev/null

test-suite: $(STAMP)
	$(OWN_BYTECODE)
	# Unit tests draw figures without a screen; notebooks (the grader's kernels, the build,
	# `make lab`) keep Jupyter's default inline backend, which students see. Each solution
	# notebook runs once, graded for the round trip; tests/test_solutions_run.py makes nbval's
	# checks (--nbval-lax) on that run instead of executing the notebooks again.
	$(TEST_ENV) MPLBACKEND=Agg $(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder tests

# No kernel, no browser, no bubblewrap: what to run after each change (markers in
# pyproject.toml). None of these tests takes a minute: one that does hangs.
test-fast: $(STAMP)
	$(OWN_BYTECODE)
	$(TEST_ENV) MPLBACKEND=Agg $(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder \
		-m "not slow and not sandbox" --timeout 60 tests

# What pre-commit runs before each commit (.pre-commit-config.yaml), on the whole tree.
lint: $(STAMP)
	$(LINT_NICE) $(BIN)/ruff check .
	$(LINT_NICE) $(BIN)/ruff format --check .
	$(LINT_NICE) $(BIN)/mypy

build: $(STAMP)
	$(BIN)/python -m grader build

demo: $(STAMP)
	-./scripts/system-packages  # without bubblewrap the demo grades its own class unsandboxed
	$(OWN_BYTECODE)
	$(BIN)/python -m grader demo

# The student's JupyterLab on this folder (courselab/: the course's lab configuration, first
# on JUPYTER_CONFIG_PATH; it writes nothing here). LAB_ARGS go to JupyterLab, e.g.
# `make lab LAB_ARGS="--port 8899 --no-browser"` (and --allow-root where you run as root).
LAB_ARGS ?=
lab: $(STAMP)
	$(BIN)/python -m courselab $(LAB_ARGS)

# The instructor's: formgrader on the grading folder (grading/, or GRADER_WORKDIR).
formgrader: $(STAMP)
	$(BIN)/python -m grader formgrader -- $(LAB_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/notebook_times.py

bench-grading: $(STAMP)
	$(BIN)/python bench/grading.py

clean:
	rm -rf $(VENV) grading .pytest_cache .ruff_cache
