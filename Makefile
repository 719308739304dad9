# The two commands of the README, plus a few conveniences.
.PHONY: demo test lint unit bootstrap bench clean

bootstrap:
	@scripts/bootstrap.sh

# Starts local services when none answer, creates the shop schema, seeds it,
# applies the DynamoDB schema and shows the toolkit at work.
demo: bootstrap
	.venv/bin/migrate demo

# Lint, type-check, then every test (integration tests start MariaDB/DynamoDB Local as needed;
# Debian's chromium is installed once for the report's browser test when missing and root).
test: bootstrap lint
	@scripts/chromium.sh
	.venv/bin/pytest -q

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy

unit: bootstrap
	.venv/bin/pytest -q tests/unit tests/property

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache reports dead-letters
