# medagent — every target sets up what it needs (a .venv with the project installed).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/data

# Debian packages that integration tests start themselves on 127.0.0.1 (never as services).
SYSTEM_PACKAGES := postgresql chromium redis-server

.PHONY: demo test lint typecheck unit bench clean system-deps

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# The demo: the bundled demo patients in a local SQLite file, the service on 127.0.0.1:8000.
DEMO_DB ?= $(CURDIR)/.demo/medagent.db

demo: $(STAMP)
	@mkdir -p $(dir $(DEMO_DB))
	$(BIN)/medagent scales list
	$(BIN)/medagent score cha2ds2_vasc age=72 sex=female chf=false hypertension=true diabetes=false stroke=false tia=false thromboembolism=false vascular_disease=false
	$(BIN)/medagent recommend --text "72-year-old woman with atrial fibrillation and hypertension, palpitations for three days"
	MEDAGENT_DB=sqlite:///$(DEMO_DB) $(BIN)/medagent serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

# Installs what the integration tests need when we are root (CI, a fresh machine); without root
# the tests that need a missing server skip with the reason (and fail under CI=true).
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$$missing >/dev/null; \
	else \
		echo "note: cannot install$$missing without root; tests that need them will skip"; \
	fi

unit: $(STAMP) system-deps
	$(BIN)/pytest -n 2 -q

test: lint typecheck unit
	$(BIN)/medagent scales verify

# Benchmarks print JSON; each also lands in bench/results/NAME.json.
BENCHES := run record_bench notes_bench recommend_bench populate_bench secure_bench service_bench monitor_bench

bench: $(STAMP) system-deps
	@mkdir -p bench/results
	@for b in $(BENCHES); do \
		echo "== $$b"; \
		$(BIN)/python bench/$$b.py --data $(DATA) | tee bench/results/$$b.json || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo bench/results test-artifacts
