# Copyright: (c) 2026, kbv3 developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin behind kbv3's binary modules: it asks the machine the
module will run on (the delegated host with `delegate_to`) for its OS and
architecture, sends the build of the module made for it, and fails with a
clear message where no build runs."""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.kbv3.hcloud.plugins.plugin_utils.platforms import (
    MODULES_DIR,
    UnsupportedPlatform,
    binary,
)


class BinaryModuleAction(ActionBase):
    """Runs the module's build for the target's OS and architecture."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        system, machine = self._target_platform()
        tool = self._task.action.split(".")[-1]
        try:
            self._build = binary(tool, system, machine)
        except UnsupportedPlatform as e:
            result.update(failed=True, msg=str(e),
                          failure={"code": "unsupported_platform", "message": str(e)})
            return result
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result.update(self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _target_platform(self):
        """`uname -s` and `uname -m` of the machine the module runs on."""
        answer = self._low_level_execute_command("uname -s -m", sudoable=False)
        words = answer.get("stdout", "").split() if answer.get("rc") == 0 else []
        if len(words) != 2:
            return "an unknown system (`uname -s -m` did not answer)", ""
        return words[0], words[1]

    def _configure_module(self, module_name, module_args, task_vars):
        built, path = super()._configure_module(module_name, module_args, task_vars)
        # Only this collection's own modules are swapped (not async_wrapper).
        if os.path.realpath(os.path.dirname(path)) == os.path.realpath(MODULES_DIR):
            path = self._build
        return built, path
