# medagent — every target sets up what it needs (a .venv with the project installed).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/data

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/medagent scales list
	$(BIN)/medagent score cha2ds2_vasc age=72 sex=female chf=false hypertension=true diabetes=false stroke=false tia=false thromboembolism=false vascular_disease=false
	$(BIN)/medagent score bmi weight=150lb height=65in
	$(BIN)/medagent score cha2ds2_vasc age=80 sex=male

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

unit: $(STAMP)
	$(BIN)/pytest -n 2 -q

test: lint typecheck unit
	$(BIN)/medagent scales verify

bench: $(STAMP)
	$(BIN)/python bench/run.py --data $(DATA)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
