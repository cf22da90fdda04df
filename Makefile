# crmsort — the two commands: `make demo` and `make test`.
# Both build .venv when it is missing or when pyproject.toml changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.crmsort-installed
APT_PACKAGES := libusb-1.0-0

.PHONY: demo test env lint typecheck bench clean-env

# one BLAS thread: the line's matrices are small, and threads fight on 2 cores
export OPENBLAS_NUM_THREADS ?= 1

demo: $(STAMP)
	$(VENV)/bin/crmsort demo

test: $(STAMP)
	$(PY) -m pytest -q

env: $(STAMP)

$(STAMP): pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = "0" ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: any other torch request pulls several GB
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev]'
	# ultralytics drags in the GUI OpenCV build, which shadows the headless one: keep headless only
	@v=$$($(PIP) show opencv-python-headless 2>/dev/null | awk '/^Version:/{print $$2}'); \
	if $(PIP) show opencv-python >/dev/null 2>&1; then \
	  $(PIP) uninstall -q -y opencv-python opencv-python-headless && \
	  $(PIP) install -q --no-deps "opencv-python-headless==$$v"; \
	fi
	$(PY) -c "import cv2, rosbags, mcap, open3d; print('environment ok: opencv', cv2.__version__)"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy calibration perception robot sorting

bench: $(STAMP)
	$(PIP) install -q -e '.[bench]' || echo "bench peers unavailable: the XRF bench skips PyMca"
	$(PY) -m bench

clean-env:
	rm -rf $(VENV)
