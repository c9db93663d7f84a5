# Two entry points (see README):
#   make benchmark   set up .venv and page_assets/, run experiments/quickstart.yml
#                    and write its HTML page to outputs/, readable offline
#   make test        set up .venv, page_assets/ and Chromium, lint (ruff) and run
#                    the whole test suite
# Real-data tests read BENCHOPT_DATA_HOME (a folder with fashion-mnist/, ijcnn1/,
# 20newsgroups/, mnist/); without it they are skipped with the reason.

VENV := .venv
PYTHON := $(VENV)/bin/python
# A CPU build of torch first, so that the `torch>=2.3` range is already met
# (a bare `pip install torch` may pull several GB of CUDA libraries).
TORCH := torch==2.13.0
# The scripts of the HTML page (plotly.js, Grid.js, anime.js), from npm at the
# versions in page_assets/package-lock.json (docs/RUNNING.md, "The HTML page").
PAGE_ASSETS := page_assets/node_modules/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: benchmark test setup setup-test page-assets browser clean

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet $(TORCH)
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PYTHON) -m pip install --quiet -r requirements-test.txt
	touch $@

# npm comes with Node.js; as root on Debian, apt-get installs it if missing.
$(PAGE_ASSETS): page_assets/package.json page_assets/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	     apt-get install -y -qq npm >/dev/null; } \
	  || { echo "npm is needed to install the HTML page's scripts" \
	       "(Debian: apt-get install npm)" >&2; exit 1; }
	cd page_assets && npm ci --no-audit --no-fund --loglevel=error
	touch $@

page-assets: $(PAGE_ASSETS)

# Debian's Chromium and ChromeDriver for tests/test_html_page.py (as root);
# where they cannot be installed that test is skipped with the reason.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq \
	    && DEBIAN_FRONTEND=noninteractive \
	       apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	  || echo "Chromium could not be installed:" \
	          "tests/test_html_page.py will be skipped"; \
	fi

setup: $(VENV)/.installed $(PAGE_ASSETS)

setup-test: setup $(VENV)/.installed-test browser

benchmark: setup
	benchopt run . --config experiments/quickstart.yml --no-display
	$(PYTHON) -m benchmark_utils.analysis.offline_page --open outputs

# pytest on 2 processes (pytest-xdist); the files whose tests share an
# expensive fixture (a benchopt run, a browser) run whole on one of them
# (tests/conftest.py, SHARED_FIXTURE_FILES).
test: setup-test
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest tests -n 2 --dist loadgroup -p no:benchmark \
	  -p no:cacheprovider -q
	benchopt test . --skip-install -p no:benchmark -p no:cacheprovider -q

clean:
	rm -rf $(VENV) __cache__ outputs page_assets/node_modules
