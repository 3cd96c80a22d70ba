# Copyright: kbv3 developers
# MIT License (see LICENSE)
"""Action plugin of kbv3.hcloud.volume: runs the module's build for the
target's OS and architecture (plugin_utils/dispatch.py)."""

from __future__ import annotations

from ansible_collections.kbv3.hcloud.plugins.plugin_utils.dispatch import BinaryModuleAction


class ActionModule(BinaryModuleAction):
    """kbv3.hcloud.volume"""
