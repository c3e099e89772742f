# The two quick-start commands (README): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned here: this version resolves to the local CPU build; a looser spec
# would pull gigabytes of CUDA packages.
TORCH  := torch==2.13.0

.PHONY: install demo check test clean

$(BIN)/vps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,train,ray,fast,int8]'
	touch $(BIN)/vps

install: $(BIN)/vps

# The main job on a synthetic clip with exact ground truth (seed 7000: no training clip used it):
# segment it with the bundled weights, score the masks against the ground truth, and render a review
# overlay of prediction vs ground truth. Re-running it redoes the segmentation (--overwrite).
demo: install
	$(BIN)/vps doctor
	$(BIN)/vps synth demo --frames 48 --seed 7000 --name demo-clip --quiet
	$(BIN)/vps segment demo/demo-clip.mp4 -o demo/segment --save-prob --overwrite --report
	$(BIN)/vps evaluate demo/segment demo/GT --keep-ends --metrics Smeasure,maxDice,meanDice,MAE
	$(BIN)/vps overlay demo/demo-clip.mp4 demo/segment/demo-clip/masks --gt demo/GT/demo-clip -o demo/demo-review.mp4 --contact-sheet demo/demo-sheet.png --quiet
	@echo "Demo outputs: demo/segment/demo-clip/report.html   <- the review page (open it in a browser)"
	@echo "              demo/segment/demo-clip/overlay.mp4   <- the overlay vps segment wrote"
	@echo "              demo/segment/demo-clip/masks/, probs/, frames.csv, run.json"
	@echo "              demo/demo-review.mp4, demo/demo-sheet.png (prediction vs ground truth)"

# The whole suite at the machine's default thread count, then the numerics-sensitive tests (results
# compared across computations) again at a second thread count: 1, or 2 where the default is 1.
SECOND_THREADS = $(shell $(PYTHON) -c "import os; print(2 if len(os.sched_getaffinity(0)) == 1 else 1)")

# Hygiene: lint and format (ruff), the types of the library's public modules (mypy, the files listed
# in pyproject.toml), the documentation site built strictly (a warning fails it; no -q, which hides them).
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict -d build/site

test: install check
	$(BIN)/python -m pytest -q
	OMP_NUM_THREADS=$(SECOND_THREADS) MKL_NUM_THREADS=$(SECOND_THREADS) $(BIN)/python -m pytest -q -m numerics

clean:
	rm -rf $(VENV) demo vps-out
