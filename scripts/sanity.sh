#!/usr/bin/env bash
# ansible-test sanity on the built collection (make collection first).
# ansible-test wants the collection at .../ansible_collections/kbv3/hcloud
# outside any git work tree (inside one it lists files with git, and target/
# is ignored), and bootstraps pip in its venvs with a script from a host this
# machine cannot reach: a private HOME holds a stand-in (ensurepip + PyPI)
# and every venv ansible-test makes, so nothing is left in the real HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${KBV3_SANITY_DIR:-${TMPDIR:-/tmp}/kbv3-sanity}
rm -rf "$work/ansible_collections"
mkdir -p "$work/ansible_collections/kbv3" "$work/home/.ansible/test/cache"
cp -a target/collection/ansible_collections/kbv3/hcloud "$work/ansible_collections/kbv3/"
pip_version=$(.venv/bin/python - <<'PY'
import pathlib, ansible_test
req = pathlib.Path(ansible_test.__file__).parent / "_data/requirements/ansible-test.txt"
print(next((l.split("==")[1].strip() for l in req.read_text().splitlines() if l.startswith("pip==")), "24.2"))
PY
)
cp scripts/ansible-test/get_pip_shim.py "$work/home/.ansible/test/cache/get_pip_${pip_version//./_}.py"
cd "$work/ansible_collections/kbv3/hcloud"
HOME="$work/home" PATH="$repo/.venv/bin:$PATH" exec ansible-test sanity --python 3.11 --color no "$@"
