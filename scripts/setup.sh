#!/usr/bin/env bash
# Installs everything the tests and the demo need, idempotently:
#   - Debian packages (xfsprogs for mkfs.xfs, openssh-server for the SSH test,
#     util-linux/e2fsprogs for losetup, blkid, mkfs.ext4);
#   - the aarch64 cross toolchain for the collection's arm64 binaries
#     (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, the Rust target) and
#     qemu-user-static to run them in the tests;
#   - a Python virtualenv at .venv/ with the pinned packages of requirements.txt.
# A rerun with nothing missing does nothing and takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in mkfs.xfs:xfsprogs sshd:openssh-server losetup:mount blkid:util-linux mkfs.ext4:e2fsprogs \
        aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu qemu-aarch64-static:qemu-user-static; do
    tool=${pair%%:*} pkg=${pair##*:}
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
        need_apt+=("$pkg")
    fi
done
# The static C library of the aarch64 cross toolchain.
[ -f /usr/aarch64-linux-gnu/lib/libc.a ] || need_apt+=(libc6-dev-arm64-cross)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: installing Debian packages: ${need_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    else
        echo "setup: missing Debian packages (${need_apt[*]}); run as root or install them" >&2
    fi
fi

if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    echo "setup: adding the Rust target aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: preparing .venv (pinned requirements.txt)"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" > "$stamp"
fi
