# The two commands a newcomer needs:  make demo   and   make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv clean bench

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# make demo ARGS=--free-ports   (any `govgate demo` option)
demo: $(STAMP)
	$(VENV)/bin/govgate demo $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway keys audit policies catalogue statedoc texts tests bench govgate_upstream.py
	$(VENV)/bin/mypy

test: $(STAMP) lint
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .govgate
