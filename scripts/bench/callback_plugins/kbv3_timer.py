"""Benchmark helper: writes each task's wall time (from its start to the
next task's start, or the end of the play) as JSON to $KBV3_TIMER_FILE."""
import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: kbv3_timer
type: aggregate
short_description: task wall times for scripts/bench.py
description: Writes [[task name, seconds], ...] to the file named by KBV3_TIMER_FILE.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kbv3_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks = []

    def _mark(self, name):
        now = time.monotonic()
        if self.tasks:
            self.tasks[-1][1] = now - self.tasks[-1][1]
        if name is not None:
            self.tasks.append([name, now])

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._mark(task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._mark(task.get_name())

    def v2_playbook_on_stats(self, stats):
        self._mark(None)
        with open(os.environ["KBV3_TIMER_FILE"], "w") as f:
            json.dump(self.tasks, f)
