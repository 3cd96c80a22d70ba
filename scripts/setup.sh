#!/usr/bin/env bash
# Installs everything the tests and the demo need, idempotently:
#   - Debian packages (xfsprogs for mkfs.xfs, openssh-server for the SSH test,
#     util-linux/e2fsprogs for losetup, blkid, mkfs.ext4);
#   - a Python virtualenv at .venv/ with the pinned packages of requirements.txt.
# A rerun with nothing missing does nothing and takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in mkfs.xfs:xfsprogs sshd:openssh-server losetup:mount blkid:util-linux mkfs.ext4:e2fsprogs; do
    tool=${pair%%:*} pkg=${pair##*:}
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
        need_apt+=("$pkg")
    fi
done
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: installing Debian packages: ${need_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    else
        echo "setup: missing Debian packages (${need_apt[*]}); run as root or install them" >&2
    fi
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: preparing .venv (pinned requirements.txt)"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" > "$stamp"
fi
