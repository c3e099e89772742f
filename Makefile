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

# Until `vps segment` lands (with trained weights), the demo makes a synthetic clip with exact
# ground truth, draws that ground truth over the video for review, and checks the installation.
demo: install
	$(BIN)/vps synth demo --frames 48 --seed 0 --name demo-clip --quiet
	$(BIN)/vps overlay demo/demo-clip.mp4 demo/GT/demo-clip -o demo/demo-overlay.mp4 --contact-sheet demo/demo-sheet.png --mask-label "ground truth" --quiet
	$(BIN)/vps doctor
	@echo "Demo outputs: demo/demo-clip.mp4 (video), demo/GT/demo-clip/ (ground-truth masks),"
	@echo "              demo/demo-overlay.mp4 and demo/demo-sheet.png (masks drawn over the video)"

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo vps-out
