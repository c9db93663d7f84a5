# Two entry points (see README):
#   make benchmark   set up .venv and run experiments/quickstart.yml (HTML in outputs/)
#   make test        set up .venv, lint (ruff) and run the whole test suite
# Real-data tests read BENCHOPT_DATA_HOME (a folder with fashion-mnist/, ijcnn1/,
# 20newsgroups/, mnist/); without it they are skipped with the reason.

VENV := .venv
PYTHON := $(VENV)/bin/python
# A CPU build of torch first, so that the `torch>=2.3` range is already met
# (a bare `pip install torch` may pull several GB of CUDA libraries).
TORCH := torch==2.13.0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: benchmark test setup setup-test clean

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet $(TORCH)
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PYTHON) -m pip install --quiet -r requirements-test.txt
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

benchmark: setup
	benchopt run . --config experiments/quickstart.yml

test: setup-test
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest tests -p no:benchmark -p no:cacheprovider -q
	benchopt test . --skip-install -p no:benchmark -p no:cacheprovider -q

clean:
	rm -rf $(VENV) __cache__ outputs
