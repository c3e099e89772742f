# The two quick-start commands (README): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned here: this version resolves to the local CPU build; a looser spec
# would pull gigabytes of CUDA packages.
TORCH  := torch==2.13.0

.PHONY: install demo test clean

$(BIN)/vps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(BIN)/vps

install: $(BIN)/vps

# Until `vps segment` lands, the demo makes a synthetic clip with exact ground truth and
# checks the installation.
demo: install
	$(BIN)/vps synth demo --frames 48 --seed 0 --name demo-clip
	$(BIN)/vps doctor
	@echo "Demo outputs: demo/demo-clip.mp4 (video) and demo/GT/demo-clip/ (ground-truth masks)"

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo vps-out
