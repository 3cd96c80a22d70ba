# kbv3 — see README.md. Everything builds for one explicit target so that the
# static-linking flag in .cargo/config.toml applies to binaries only.
TARGET  := x86_64-unknown-linux-gnu
BIN     := target/$(TARGET)/release
CARGO   := cargo
# The shipped binary is built with the size-tuned `dist` profile (Cargo.toml);
# the simulator and the tests use `release`.
DIST    := target/$(TARGET)/dist
DIST_FLAGS := --profile dist --bin kbv3
# The collection also ships an arm64 build.
AARCH64 := aarch64-unknown-linux-gnu

.PHONY: all build build-aarch64 collection setup test lint demo bench clean

all: build

## build: the static binaries; installs kbv3 (one multi-call binary, src/multicall.rs) as
## the modules in library/ and the inventory in inventory/
build:
	$(CARGO) build --release --target $(TARGET) --bin hcloud-sim
	$(CARGO) build $(DIST_FLAGS) --target $(TARGET)
	install -D -m 0755 $(DIST)/kbv3 library/kbv3_volume
	install -D -m 0755 $(DIST)/kbv3 library/kbv3_volumes
	install -D -m 0755 $(DIST)/kbv3 inventory/kbv3_inventory

## build-aarch64: kbv3 for Linux aarch64 (Debian's cross toolchain, static)
build-aarch64: setup
	$(CARGO) build $(DIST_FLAGS) --target $(AARCH64)

## collection: kbv3-hcloud-<version>.tar.gz, the installable Ansible collection (x86_64 and aarch64)
collection: build build-aarch64
	.venv/bin/python scripts/build_collection.py $(DIST) target/$(AARCH64)/dist .

## setup: Debian packages and the pinned Python virtualenv (.venv), idempotent
setup:
	./scripts/setup.sh

## test: everything, from a fresh clone: set-up, build, cargo tests, Python/Ansible tests, conformance
test: setup build collection
	./scripts/test.sh

## lint: formatting, clippy, ansible-lint
lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --target $(TARGET) --all-targets -- -D warnings
	.venv/bin/ansible-lint playbooks/

## demo: the PH3-01 / PH3-02 walk-through against a local simulator
demo: setup build
	./scripts/demo.sh

## bench: timings that stay out of `make test` (one part: make bench ARGS="faults"; parts: inventory module faults journal fleet slices)
bench: setup build
	./scripts/bench.sh $(ARGS)

clean:
	$(CARGO) clean
	rm -f library/kbv3_volume library/kbv3_volumes inventory/kbv3_inventory kbv3-hcloud-*.tar.gz
