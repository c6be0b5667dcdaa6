# koogate — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
VENV_STAMP  := $(VENV)/.installed
ADDR        ?= 127.0.0.1:8080
SECRETS     ?= .koogate/secrets.json
STORE       ?= sqlite:.koogate/koogate.db
KOOGATE     := target/debug/koogate
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 10
# The test tools (moto_server, cfn-lint, cargo-lambda) come from the project's own virtualenv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help run test build sizes deploy lint bench venv clean fuzz fuzz-smoke package-huaweicloud template

help:
	@echo "make run     build and start every route locally on SQLite ($(ADDR)), print an example call"
	@echo "make test    install the test tools into $(VENV) and run every test (cfn-lint, moto, cargo-lambda)"
	@echo "make build   cargo lambda build --profile lambda-size --arm64 (every Lambda function, built for size)"
	@echo "make sizes   make build, then print the size of every function's bootstrap"
	@echo "make deploy  sam build && sam deploy --guided (see infra/README.md)"
	@echo "make package-huaweicloud  FunctionGraph HTTP-function zips (x86_64, aarch64) in dist/huaweicloud; see infra/huaweicloud/README.md"
	@echo "make lint    cargo fmt --check, clippy, cfn-lint"
	@echo "make template  regenerate infra/template.yaml from the route table and infra/generator (a test fails on drift)"
	@echo "make bench   criterion benchmarks and a load run against koogate serve"
	@echo "make fuzz    every cargo-fuzz target for FUZZ_SECONDS each (default $(FUZZ_SECONDS)); table in docs/bench-output/fuzz.md"

run:
	cargo build -p koogate-cli
	@test -f $(SECRETS) || $(KOOGATE) init-secrets $(SECRETS)
	@echo
	@echo "Every route is served on http://$(ADDR). In another shell, send a signed debug newInstance:"
	@echo
	@echo "  KOOGATE_SECRETS_FILE=$(SECRETS) $(KOOGATE) sign --url http://$(ADDR)/saas --activity newInstance --send"
	@echo
	@echo "or print the equivalent curl (fresh signature each time; signatures expire after 60 s):"
	@echo
	@echo "  KOOGATE_SECRETS_FILE=$(SECRETS) $(KOOGATE) sign --url http://$(ADDR)/saas --activity newInstance"
	@echo
	@echo "or run every seller-console case of every interface (koogate sim, see README):"
	@echo
	@echo "  $(KOOGATE) sim --url http://$(ADDR)/saas --keys $(SECRETS)"
	@echo
	KOOGATE_SECRETS_FILE=$(SECRETS) KOOGATE_STORE=$(STORE) exec $(KOOGATE) serve --addr $(ADDR)

$(VENV_STAMP): tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

venv: $(VENV_STAMP)

test: $(VENV_STAMP)
	@echo "== cfn-lint infra/template.yaml"
	cfn-lint infra/template.yaml && echo "cfn-lint: infra/template.yaml clean"
	@echo "== cargo fmt --check"
	cargo fmt --all -- --check
	@echo "== cargo build of the saas function binary (cargo lambda watch runs it) and of koogate (koogate sim runs against koogate serve)"
	cargo build -p koogate-saas --bin saas -p koogate-cli --bin koogate
	@echo "== cargo test (moto_server: $$(command -v moto_server); cargo-lambda: $$(command -v cargo-lambda))"
	KOOGATE_REQUIRE_MOTO=1 KOOGATE_REQUIRE_CARGO_LAMBDA=1 KOOGATE_REQUIRE_HCL2=1 cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt; exit $${PIPESTATUS[0]}
	@echo "== fuzz smoke run: every cargo-fuzz target for $(FUZZ_SMOKE_SECONDS)s (make fuzz runs longer)"
	$(MAKE) --no-print-directory fuzz-smoke
	@echo "== no process started by the tests is left running"
	@left=$$(ps -eo pid=,args= | grep -F "$(CURDIR)" | grep -v -e "grep -F" -e "ps -eo" || true); \
	if [ -n "$$left" ]; then echo "still running:"; echo "$$left"; exit 1; else echo "none left"; fi
	@echo "== summary"
	@grep -E "^test result:" target/test-output.txt | awk '{p+=$$4; f+=$$6} END {print p " passed, " f " failed"}'

# Every Lambda function binary (infra/template.yaml BuildProperties.Binary).
FUNCTIONS := saas saas-legacy license license-legacy order-notify tenant-sync application-sync auth-sync single-org-sync all-org-sync sso usage-push product-api event-dispatch

# The Lambda bootstraps are built for size: Cargo.toml's `lambda-size` profile. `sam build` always
# passes --release, so `make deploy` gives it the same settings through Cargo's environment.
LAMBDA_PROFILE_ENV := CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

build: $(VENV_STAMP)
	cargo lambda build --profile lambda-size --arm64 $(addprefix --bin ,$(FUNCTIONS))

# The stripped arm64 bootstrap of every function, in bytes and MiB (docs/PERFORMANCE.md).
sizes: build
	@printf "| function | bootstrap bytes | MiB |\n|---|---:|---:|\n"
	@for f in $(FUNCTIONS); do b=$$(stat -c %s target/lambda/$$f/bootstrap); \
	  awk -v f=$$f -v b=$$b 'BEGIN { printf "| %s | %d | %.2f |\n", f, b, b / 1048576 }'; done

# Huawei Cloud: FunctionGraph HTTP-function code packages (bootstrap + koogate), one per
# architecture, cross-compiled with cargo-lambda/zig from the venv. HUAWEICLOUD_ARCHS=x86_64 builds
# one. Not part of `make test` (release builds); the smoke test packages a debug host build.
HUAWEICLOUD_ARCHS ?= x86_64 aarch64

package-huaweicloud: $(VENV_STAMP)
	packaging/huaweicloud/package.sh --profile release $(addprefix --arch ,$(HUAWEICLOUD_ARCHS))

# infra/template.yaml is generated (infra/generator): per-function resources from the route table
# and infra/generator/src/functions.rs, the rest from infra/generator/template.skeleton.yaml.
# `cargo test -p koogate-infra` (part of make test) fails when the checked-in file differs.
template:
	cargo run -q -p koogate-infra -- --write

deploy: build
	cd infra && $(LAMBDA_PROFILE_ENV) sam build && sam deploy --guided

lint: $(VENV_STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cfn-lint infra/template.yaml

bench:
	cargo build --release -p koogate-cli --bin koogate
	cargo build --release -p koogate-saas --bin saas
	cargo build --release -p koogate-tests --bin koogate-baseline --bin koogate-load --bin koogate-usage-load --bin koogate-event-load
	cargo bench -p koogate-protocol
	cargo bench -p koogate-tests --bench pipeline
	target/release/koogate-load
	target/release/koogate-usage-load --records 100000
	target/release/koogate-event-load --calls 500 --backlog 5000

# cargo-fuzz (pinned in fuzz/run.sh) is installed into .tools/ on first use; stable toolchain
# with RUSTC_BOOTSTRAP=1. Exits non-zero on any crash. See docs/PERFORMANCE.md, "Fuzzing".
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_REPORT=docs/bench-output/fuzz.md fuzz/run.sh

fuzz-smoke:
	FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) fuzz/run.sh

clean:
	rm -rf target $(VENV) .koogate
