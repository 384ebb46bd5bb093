# tunescope: `make demo` and `make test` work on a fresh machine (Python 3.11+, pip, network to
# the package registries). Everything the project needs is installed from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.tunescope-installed
export TUNESCOPE_HOME ?= $(CURDIR)/var
DEMO_DIR ?= $(CURDIR)/var/demo-catalog
DEMO_SIZE ?= 1500
DEMO_SEED ?= 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install soundfonts demo test lint bench clean browser

install: $(STAMP)

# torch first, pinned to the CPU wheel: a bare `torch` requirement would pull a CUDA build.
# tinysoundfont --no-deps: its pyaudio dependency needs portaudio headers and is unused here.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q --no-deps tinysoundfont==0.3.7
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

# Extra General MIDI soundfonts (Debian packages) for timbre augmentation and the held-out
# soundfont evaluation, and libfluidsynth3 for the second engine (generation/symbolic/fluid.py).
# Optional: without them only pretty_midi's TimGM6mb and tinysoundfont are used.
soundfonts:
	@if [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    fluid-soundfont-gm musescore-general-soundfont-small csound-soundfont) >/dev/null \
	  || echo "note: extra soundfonts not installed; using TimGM6mb only"; fi
	@if ! ldconfig -p 2>/dev/null | grep -q libfluidsynth.so.3 && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfluidsynth3) >/dev/null \
	  || echo "note: libfluidsynth3 not installed; the FluidSynth engine is unavailable"; fi

# Generative backfill (issue 17): the demo server generates tracks where a search matches the
# catalog weakly. Its novelty gate needs the corpus melodies' 12-gram index, built once into
# TUNESCOPE_HOME (about 40 CPU-minutes, spread over every core). DEMO_BACKFILL=0 turns both off.
DEMO_BACKFILL ?= 1
DEMO_ENV := $(if $(filter 1,$(DEMO_BACKFILL)),TUNESCOPE_BACKFILL_GENERATE=api.backfill_pipeline:from_settings)

demo: install soundfonts
	@if [ ! -f $(DEMO_DIR)/metadata.jsonl ]; then \
	  $(VENV)/bin/tunescope demo-catalog --out $(DEMO_DIR) --size $(DEMO_SIZE) --seed $(DEMO_SEED); fi
	$(VENV)/bin/tunescope ingest $(DEMO_DIR) --metadata $(DEMO_DIR)/metadata.jsonl
	@if [ "$(DEMO_BACKFILL)" = 1 ] && [ ! -f "$(TUNESCOPE_HOME)/novelty/melody-12grams.npy" ]; then \
	  $(VENV)/bin/tunescope build-novelty-index; fi
	@if $(VENV)/bin/tunescope --help | grep -q " serve "; then $(DEMO_ENV) $(VENV)/bin/tunescope serve; \
	  else $(VENV)/bin/tunescope catalog stats; fi

# Debian chromium for the browser test (driven by Playwright's Python package, never
# `playwright install`). Without root or apt the browser test skips and says why.
browser:
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
	  || echo "note: chromium not installed; the browser test will skip"; fi

test: install soundfonts browser
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check api index retrieval generation tests benchmarks

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache
