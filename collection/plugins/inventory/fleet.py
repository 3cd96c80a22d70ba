# Copyright: (c) 2026, kbv3 developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin kbv3.hcloud.fleet: the kbv3 fleet (servers_v3.tsv, the
volume rules and the reviewed PH3-01 diff) as Ansible groups and variables,
with the constructed features (compose, groups, keyed_groups, strict)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet
short_description: The kbv3 fleet (servers_v3.tsv and the PH3-01 diff) as an inventory
version_added: "0.1.0"
author:
  - kbv3 developers (@kbv3)
description:
  - Reads the fleet files with the collection's own C(kbv3_inventory) binary
    (the same program as this repository's inventory script; there is no
    second parser) and adds its hosts, groups and variables.
  - Groups - one per role_v3 (lowercase, C(_) for other characters), one per
    volume class (C(data_<class>)), C(kbv3) holding the role groups, and
    C(kbv3_orphans) for the pseudo-host that owns the unattached legacy
    volumes of the diff.
  - Host variables - C(ansible_host) (the private IP), C(role_v3),
    C(kbv3_volume_name), C(kbv3_volume_size), C(kbv3_volume_class),
    C(kbv3_mountpoint) and, with a diff, C(kbv3_legacy_volumes).
  - The orphans' pseudo-host C(kbv3-orphan-volumes) (only when the diff has
    unattached legacy volumes) has no volume of its own - C(kbv3_volume_size)
    is V(0) and C(kbv3_volume_name), C(kbv3_volume_class) and
    C(kbv3_mountpoint) are not defined - so guard expressions over those with
    C(is defined) or C(default) when O(strict=true).
  - Bad fleet data (a malformed line, an unknown role, a diff that no longer
    matches the fleet) or a failing O(compose), O(groups) or O(keyed_groups)
    expression with O(strict=true) fails the command with the file, line and
    what to fix, even where Ansible's settings would only warn about an
    inventory source that does not parse; no playbook runs on a partial fleet.
  - The configuration file must end in C(.kbv3.yml) or C(.kbv3.yaml).
  - Runs on Linux x86_64 and aarch64 controllers.
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin; it must be V(kbv3.hcloud.fleet).
    required: true
    type: str
    choices: [kbv3.hcloud.fleet]
  fleet_dir:
    description:
      - The folder of the fleet files (C(servers_v3.tsv), C(volume_rules_v3.tsv),
        C(volume_diff_v3.json)); PH3-01 writes its plan, snapshot and diff there.
      - Relative to the folder of this configuration file.
    type: str
    default: servers
  state_dir:
    description:
      - The state directory - PH3-01's plan, snapshot and diff, PH3-02's journal,
        host locks and report - when it is not O(fleet_dir). Put it on storage
        that outlives a checkout (AWX re-syncs the project for every job).
        Relative to the folder of this configuration file. The playbooks read it
        as C(kbv3_state_dir).
    type: str
  servers_file:
    description:
      - The fleet's source of truth (HOSTNAME, IP_PRIVEE, ROLE_V3, tab-separated),
        when it is not O(fleet_dir)/servers_v3.tsv. Relative to the configuration file.
    type: str
  rules_file:
    description:
      - The volume rules by role, when they are not O(fleet_dir)/volume_rules_v3.tsv.
        Relative to the configuration file.
    type: str
  diff_file:
    description:
      - The reviewed PH3-01 diff, when it is not O(fleet_dir)/volume_diff_v3.json.
        Relative to the configuration file. Without a diff file, hosts carry no
        legacy volumes.
    type: str
seealso:
  - module: kbv3.hcloud.volumes
  - module: kbv3.hcloud.volume
  - name: hetzner.hcloud.hcloud inventory
    description: The official Hetzner Cloud inventory plugin (servers from the API).
    link: https://docs.ansible.com/ansible/latest/collections/hetzner/hcloud/hcloud_inventory.html
"""

EXAMPLES = r"""
# fleet.kbv3.yml, next to a servers/ folder with servers_v3.tsv:
plugin: kbv3.hcloud.fleet
fleet_dir: servers
# One group per volume size (size_0: the orphans' pseudo-host, no volume of its own).
keyed_groups:
  - key: kbv3_volume_size | string
    prefix: size
# Variables composed from the plan; the pseudo-host has no volume class.
compose:
  kbv3_data_dir: "'/data/' ~ kbv3_volume_class if kbv3_volume_class is defined else ''"
groups:
  big_volumes: kbv3_volume_size >= 200
strict: true
"""

import json
import os
import platform
import subprocess

from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.parsing.ajson import AnsibleJSONDecoder
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

from ansible_collections.kbv3.hcloud.plugins.plugin_utils.platforms import UnsupportedPlatform, binary

# The fleet files' options and the variables that point kbv3_inventory at them.
_FILES = (("fleet_dir", "KBV3_FLEET_DIR"), ("state_dir", "KBV3_STATE_DIR"), ("servers_file", "KBV3_SERVERS_FILE"),
          ("rules_file", "KBV3_RULES_FILE"), ("diff_file", "KBV3_DIFF_FILE"))


class InventoryModule(BaseInventoryPlugin, Constructable):
    """The kbv3 fleet, with constructed groups and variables."""

    NAME = "kbv3.hcloud.fleet"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".kbv3.yml", ".kbv3.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        try:
            self._read_config_data(path)
            self._populate(path)
        except Exception as e:
            # With Ansible's defaults a source that fails to parse is only a
            # warning, and what it added so far stays: a partial fleet, or an
            # empty one that a playbook runs on as "no hosts matched". Bad
            # fleet data must stop the command instead.
            C.INVENTORY_ANY_UNPARSED_IS_FAILED = True
            if isinstance(e, AnsibleParserError):
                raise
            raise AnsibleParserError("%s: %s" % (path, e)) from e

    def _populate(self, path):
        data = self._run_tool(path)
        for group, body in data.items():
            if group != "_meta":
                self._add_group(group, body or {})
        strict = self.get_option("strict")
        for host, hostvars in data.get("_meta", {}).get("hostvars", {}).items():
            self.inventory.add_host(host)
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, value)
            known = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), known, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), known, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), known, host, strict=strict)

    def _add_group(self, group, body):
        self.inventory.add_group(group)
        for child in body.get("children", []):
            self.inventory.add_group(child)
            self.inventory.add_child(group, child)
        for host in body.get("hosts", []):
            self.inventory.add_host(host, group=group)
        for key, value in body.get("vars", {}).items():
            self.inventory.set_variable(group, key, value)

    def _run_tool(self, path):
        """kbv3_inventory --list on the configured files; its JSON answer."""
        try:
            tool = binary("kbv3_inventory", platform.system(), platform.machine())
        except UnsupportedPlatform as e:
            raise AnsibleParserError("%s: %s" % (path, e))
        # Relative paths are relative to this configuration file's folder, not
        # to the working directory (AWX syncs from the project's root).
        base = os.path.dirname(os.path.abspath(path))
        env = dict(os.environ)
        for option, variable in _FILES:
            value = self.get_option(option)
            if value:
                env[variable] = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
        try:
            proc = subprocess.run([tool, "--list"], env=env, capture_output=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AnsibleParserError("%s: cannot run %s: %s" % (path, tool, e))
        if proc.returncode != 0:
            why = proc.stderr.decode("utf-8", "replace").strip() or "exit code %d" % proc.returncode
            raise AnsibleParserError("%s: the kbv3 fleet cannot be read:\n%s" % (path, why))
        try:
            # The decoder keeps text that must not be templated marked unsafe.
            return json.loads(proc.stdout, cls=AnsibleJSONDecoder)
        except ValueError as e:
            raise AnsibleParserError("%s: %s answered something that is not JSON: %s" % (path, tool, e))
