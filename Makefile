# The two commands (see README.md): `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
ENV := tools/env.sh
PYTEST_ARGS ?=

.PHONY: setup demo test bench lint clean

setup:
	@bash tools/setup.sh

demo: setup
	@$(ENV) vla-steer demo

test: setup
	@$(ENV) python -m pytest $(PYTEST_ARGS)

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(ENV) python $$b || exit 1; done

clean:
	rm -rf build install log .state runs
