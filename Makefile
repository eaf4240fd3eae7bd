# spikeloop: `make demo` runs the pipeline end to end, `make test` runs the test suite.
# Both set up .venv on first use (Python 3.11, CPU torch, Lava installed without its stale pins).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.stamp-setup
TORCH  := torch==2.13.0
LAVA   := lava-nc==0.10.0 lava-dl==0.6.0
NORSE  := norse==1.1.0
NEUROBENCH := neurobench==2.3.0
SINABS := sinabs==3.1.3
ROCKPOOL := rockpool==3.1.0
PBR    := pbr==7.1.3
MINATAR := minatar==1.0.15
XYLOSIM := xylosim==0.1.3
SB3    := stable-baselines3==2.7.0 cloudpickle==3.1.3 pandas==2.2.3 pytz==2026.6 tzdata==2026.6

.PHONY: setup demo test test-slow bench mutation clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install -q $(TORCH)
	# Lava declares Python <3.11 and stale pins (torch 2.3, networkx<=2.8.7, ...):
	# install without dependencies; pyproject.toml declares what they really need and
	# spikeloop.runtime.lava_compat makes them import on 3.11.
	$(PIP) install -q --no-deps --ignore-requires-python $(LAVA)
	# Norse (a peer whose NIR files the tests import) declares torchvision, which would pull
	# another torch; it needs only numpy, torch, nir and nirtorch, all installed here.
	$(PIP) install -q --no-deps $(NORSE)
	# NeuroBench (its metrics check our operation counts) declares torchaudio, tonic and numba;
	# the metrics the tests use need none of them.
	$(PIP) install -q --no-deps $(NEUROBENCH)
	# sinabs (a peer whose NIR files the tests import) pins nir<=1.0.4 and declares samna,
	# which cannot be installed here; its exporter and layers need only pbr besides ours.
	$(PIP) install -q --no-deps $(SINABS) $(PBR)
	# Rockpool (AGPL-3.0: a test dependency only, never imported by spikeloop) declares its
	# own pins; its torch modules and to_nir need nothing beyond what is installed.
	$(PIP) install -q --no-deps $(ROCKPOOL)
	# Stable-Baselines3 (MIT; a test dependency: the tests convert DQN archives it writes) without its
	# deps, so that pandas stays on a numpy<2 release; spikeloop reads its .zip files without it.
	$(PIP) install -q --no-deps $(SB3)
	# MinAtar (GPL-3.0: a test dependency; spikeloop imports it only when a MinAtar id is made)
	# declares gym/matplotlib/seaborn pins it does not need for its games.
	$(PIP) install -q --no-deps $(MINATAR)
	# xylosim (SynSense's bit-accurate Xylo simulator; it declares no licence, so it is a test dependency
	# only, never imported by spikeloop) has no cp311 wheel: it builds from source with a C++ compiler in
	# about 1.5-3 minutes. Without a compiler the Xylo tests fail (they do not skip).
	if command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1; then \
		$(PIP) install -q --no-deps $(XYLOSIM) || echo "xylosim did not build: tests/test_xylo.py will fail"; \
	else echo "no C++ compiler: xylosim not built, tests/test_xylo.py will fail"; fi
	$(PIP) install -q -e ".[test,envs,sweep,metrics]"
	$(PY) -c "import spikeloop.runtime.lava_compat as c; c.check()"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/spikeloop demo

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	$(PY) benchmarks/closed_loop.py

# Mutation testing of the core modules (cosmic-ray, pinned and installed on first use; one worker;
# hours on a 2-core machine). Not part of `make test`. SESSIONS=neuron,counters runs some of them.
# Writes its section of BENCHMARKS.md; see benchmarks/mutation.py.
mutation: setup
	$(PY) benchmarks/mutation.py $(if $(SESSIONS),--sessions $(SESSIONS)) --command "make mutation$(if $(SESSIONS), SESSIONS=$(SESSIONS))"

clean:
	rm -rf $(VENV) runs build *.egg-info
