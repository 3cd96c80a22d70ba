# Copyright: (c) 2026, kbv3 developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of kbv3.hcloud.volumes: runs the module's build for the
target's OS and architecture (plugin_utils/dispatch.py)."""

from __future__ import annotations

from ansible_collections.kbv3.hcloud.plugins.plugin_utils.dispatch import BinaryModuleAction


class ActionModule(BinaryModuleAction):
    """kbv3.hcloud.volumes"""
