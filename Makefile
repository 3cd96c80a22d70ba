# kbv3 — see README.md. Everything builds for one explicit target so that the
# static-linking flag in .cargo/config.toml applies to binaries only.
TARGET  := x86_64-unknown-linux-gnu
PROFILE := release
BIN     := target/$(TARGET)/$(PROFILE)
CARGO   := cargo
CARGO_FLAGS := --$(PROFILE) --target $(TARGET)
# The collection also ships arm64 builds of the modules and the inventory tool.
AARCH64 := aarch64-unknown-linux-gnu
TOOLS   := --bin kbv3_volume --bin kbv3_volumes --bin kbv3_inventory

.PHONY: all build build-aarch64 collection setup test lint demo bench clean

all: build

## build: the static binaries; installs the modules into library/ and the inventory into inventory/
build:
	$(CARGO) build $(CARGO_FLAGS) --bins
	install -D -m 0755 $(BIN)/kbv3_volume library/kbv3_volume
	install -D -m 0755 $(BIN)/kbv3_volumes library/kbv3_volumes
	install -D -m 0755 $(BIN)/kbv3_inventory inventory/kbv3_inventory

## build-aarch64: the modules and the inventory tool for Linux aarch64 (Debian's cross toolchain, static)
build-aarch64: setup
	$(CARGO) build --$(PROFILE) --target $(AARCH64) $(TOOLS)

## collection: kbv3-hcloud-<version>.tar.gz, the installable Ansible collection (x86_64 and aarch64)
collection: build build-aarch64
	.venv/bin/python scripts/build_collection.py $(BIN) target/$(AARCH64)/$(PROFILE) .

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

## bench: timings that stay out of `make test` (one part: make bench ARGS="faults"; parts: inventory module faults journal fleet)
bench: setup build
	./scripts/bench.sh $(ARGS)

clean:
	$(CARGO) clean
	rm -f library/kbv3_volume library/kbv3_volumes inventory/kbv3_inventory kbv3-hcloud-*.tar.gz
