# Copyright: (c) 2026, kbv3 developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of the collection's static binaries runs on a given machine.

kbv3 is one static Linux executable per architecture (x86_64, aarch64),
builds/linux-<arch>/kbv3, that runs as the tool it is named after; the
tool names beside it are links to it. The module files Ansible resolves
(plugins/modules/volume, volumes) link to the x86_64 build's names.
"""

from __future__ import annotations

import os

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES_DIR = os.path.join(COLLECTION_ROOT, "plugins", "modules")
BIN_DIR = os.path.join(COLLECTION_ROOT, "builds")

# `uname -m` spellings of the two architectures.
_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


class UnsupportedPlatform(Exception):
    """No build of the tool runs on that machine."""


def _arch(system, machine):
    """The build's architecture for `uname -s`, `uname -m`, or None."""
    if system.strip().lower() != "linux":
        return None
    return _ARCHES.get(machine.strip().lower())


def binary(tool, system, machine):
    """The path of `tool` (volume, volumes, kbv3_inventory) built for that
    machine; raises UnsupportedPlatform with what to do instead."""
    arch = _arch(system, machine)
    if arch is None:
        raise UnsupportedPlatform(unsupported_message(tool, system, machine))
    return os.path.join(BIN_DIR, "linux-" + arch, tool)


def unsupported_message(tool, system, machine):
    """Why `tool` cannot run there, and how to run it from a machine that can."""
    where = "%s %s" % (system.strip() or "an unknown system", machine.strip() or "(unknown architecture)")
    text = ("kbv3.hcloud: %s is a static Linux binary built for x86_64 and aarch64; it cannot run on %s. "
            % (tool, where))
    if system.strip().lower() == "darwin":
        text += ("On macOS, run the kbv3 API tasks from a Linux controller or container instead, for example "
                 "`docker run --rm -it -v \"$PWD\":/work -w /work python:3.11 bash`, then `pip install ansible-core` "
                 "and `ansible-galaxy collection install` the kbv3.hcloud tarball there; ")
    else:
        text += "Run the task on a Linux x86_64 or aarch64 machine; "
    text += ("the API tasks need no particular host, so `delegate_to:` a Linux controller "
             "(for example `delegate_to: localhost` on a Linux control node) works.")
    return text
