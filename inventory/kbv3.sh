#!/bin/sh
# The inventory that ansible.cfg names. It runs kbv3_inventory, the static
# binary `make build` installs next to this file, and says what to do when
# it is not there yet (a fresh clone).
here=$(dirname "$0")
if [ -x "$here/kbv3_inventory" ]; then
    exec "$here/kbv3_inventory" "$@"
fi
repo=$(cd "$here/.." && pwd)
cat >&2 <<MSG
kbv3: the inventory binary $here/kbv3_inventory is not built yet.
  Build it:  cd $repo && make build      (needs cargo; 'make setup' installs the Python side)
  Or use the collection instead: make collection, ansible-galaxy collection install kbv3-hcloud-*.tar.gz,
  and an inventory file with 'plugin: kbv3.hcloud.fleet' (README: "The collection").
MSG
exit 2
