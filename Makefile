# The two commands a new user needs: `make demo` and `make test`. Both set up everything themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test lint bench bench-drain bench-peer bench-suite soak system-deps clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cgt-gateway needs Python 3.11 or newer (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing cgt-gateway and its test dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

system-deps:  ## install what the tests need from the OS (socat for RTU over a pty pair, mosquitto for MQTT, chromium for the dashboard, libfaketime for clock jumps)
	@command -v socat >/dev/null 2>&1 || { \
	  echo "installing socat (Modbus RTU tests run over a pty pair) ..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq socat >/dev/null; }
	@# The MQTT tests start their own broker process on a free port: the system service is not needed,
	@# so it is stopped and disabled right after the install (it would hold port 1883 for nothing).
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || { \
	  echo "installing mosquitto (the MQTT sink tests run a real broker) ..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends mosquitto >/dev/null && \
	  { ! command -v systemctl >/dev/null 2>&1 || $(SUDO) systemctl disable --now mosquitto >/dev/null 2>&1 || true; }; }
	@# The dashboard test drives Debian's Chromium through Playwright (its own browser builds are never downloaded).
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium (the dashboard test runs the page in headless Chromium) ..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@# The gateway-clock reliability test moves the gateway process's wall clock with libfaketime.
	@ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || { \
	  echo "installing libfaketime (the reliability suite jumps the gateway's clock) ..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libfaketime >/dev/null; }

demo: $(STAMP)  ## run the gateway against simulated equipment, printing records live
	$(BIN)/cgt-gateway run -c config/demo.yaml --show

test: $(STAMP) system-deps  ## the whole suite: layer contracts, then tests
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

lint: $(STAMP)  ## style and layer checks
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)  ## ingest benchmark (quick)
	$(BIN)/python bench/ingest.py --quick

bench-drain: $(STAMP) system-deps  ## backlog drain rate of the HTTP and MQTT sinks (quick)
	$(BIN)/python bench/drain.py --quick

bench-peer: $(STAMP)  ## CPU per Modbus read against Node-RED (quick; needs node and npm, installs Node-RED on first run)
	$(BIN)/python bench/peer.py --quick

bench-suite: $(STAMP)  ## footprint of a typical suite: 40 devices, 2 000 tags at 1 Hz, against the bars (quick)
	$(BIN)/python bench/suite.py --quick

SOAK_HOURS ?= 4
soak: $(STAMP) system-deps  ## the demo-like site for SOAK_HOURS (default 4): RSS, CPU, fds, journal each minute to a CSV, then the drift
	$(BIN)/python bench/soak.py --hours $(SOAK_HOURS)

clean:  ## remove the virtualenv and demo data
	rm -rf $(VENV) data
