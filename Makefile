.PHONY: demo test lint setup
OUT ?= demo-out

setup:
	bash scripts/setup.sh

# Installs everything, then grades every bundled example into $(OUT)/.
demo: setup
	.venv/bin/autograder demo --out $(OUT)

# Installs everything, then runs the linter and the whole test suite.
test: setup
	.venv/bin/ruff check autograder reference_impl solutions tests benchmarks scripts
	.venv/bin/python -m pytest -q; s=$$?; if [ $$s -eq 5 ]; then echo 'no tests collected'; exit 0; fi; exit $$s

lint: setup
	.venv/bin/ruff check autograder reference_impl solutions tests benchmarks scripts
