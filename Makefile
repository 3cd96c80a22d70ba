# kbv3 — see README.md. Everything builds for one explicit target so that the
# static-linking flag in .cargo/config.toml applies to binaries only.
TARGET  := x86_64-unknown-linux-gnu
PROFILE := release
BIN     := target/$(TARGET)/$(PROFILE)
CARGO   := cargo
CARGO_FLAGS := --$(PROFILE) --target $(TARGET)

.PHONY: all build setup test lint demo bench clean

all: build

## build: the static binaries; installs the modules into library/ and the inventory into inventory/
build:
	$(CARGO) build $(CARGO_FLAGS) --bins
	install -D -m 0755 $(BIN)/kbv3_volume library/kbv3_volume
	install -D -m 0755 $(BIN)/kbv3_volumes library/kbv3_volumes
	install -D -m 0755 $(BIN)/kbv3_inventory inventory/kbv3_inventory

## setup: Debian packages and the pinned Python virtualenv (.venv), idempotent
setup:
	./scripts/setup.sh

## test: everything, from a fresh clone: set-up, build, cargo tests, Python/Ansible tests, conformance
test: setup build
	./scripts/test.sh

## lint: formatting, clippy, ansible-lint
lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --target $(TARGET) --all-targets -- -D warnings
	.venv/bin/ansible-lint playbooks/

## demo: the PH3-01 / PH3-02 walk-through against a local simulator
demo: setup build
	./scripts/demo.sh

## bench: timings that stay out of `make test`
bench: setup build
	./scripts/bench.sh

clean:
	$(CARGO) clean
	rm -f library/kbv3_volume library/kbv3_volumes inventory/kbv3_inventory
