# The two commands of the README. Both do all set-up first (idempotent).
.PHONY: setup demo test lint

setup:
	bash .ci/setup

demo: setup
	.venv/bin/golddigger demo

test: setup
	.venv/bin/python -m pytest -q tests

lint: setup
	.venv/bin/ruff check src tests benchmarks
