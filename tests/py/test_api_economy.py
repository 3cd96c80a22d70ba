"""Requests per operation: kbv3_volume next to the official
hetzner.hcloud.volume module (from the pinned ansible package), each on its
own fresh simulator, counted from the simulator's request log."""
import collections
import json
import os
import pathlib

from conftest import play

OPERATIONS = [
    ("create with server", {"name": "kbv3-siem-01-data", "size": 50, "server": "siem-01"}),
    ("no-op rerun", {"name": "kbv3-siem-01-data", "size": 50, "server": "siem-01"}),
    ("absent (attached)", {"name": "vol-vault-01", "state": "absent"}),
]


def count(sim, tasks, tmp_path):
    counts = []
    for task in tasks:
        before = len(sim.requests())
        # Production pacing (first poll after 500 ms) so poll counts do not depend on timing.
        result = play(sim, [task], tmp_path, env={"KBV3_POLL_INTERVAL_MS": "500"})
        assert result.rc == 0, result.stdout
        c = collections.Counter(r["method"] for r in sim.requests()[before:])
        counts.append(dict(c))
    return counts


def test_kbv3_sends_fewer_requests_than_the_official_module(start_sim, tmp_path):
    # 300 ms actions: both modules' first polls (ours after 500 ms, theirs at once,
    # then after 2 s) see the same status on any machine, so counts are stable.
    ours_sim = start_sim(action_ms=300)
    ours = count(ours_sim, [{"kbv3_volume": args} for _, args in OPERATIONS], tmp_path)
    theirs_sim = start_sim(action_ms=300)
    official_args = {"api_token": theirs_sim.token, "api_endpoint": theirs_sim.endpoint}
    theirs = count(theirs_sim, [{"hetzner.hcloud.volume": {**args, **official_args}} for _, args in OPERATIONS], tmp_path)
    table = {name: {"kbv3_volume": o, "hetzner.hcloud.volume": t} for (name, _), o, t in zip(OPERATIONS, ours, theirs)}
    print(json.dumps(table, indent=1))
    artifacts = os.environ.get("KBV3_RESPONSE_LOG_DIR")
    if artifacts:
        (pathlib.Path(artifacts).parent / "api-economy.json").write_text(json.dumps(table, indent=1))
    total = lambda c: sum(c.values())
    assert total(ours[1]) <= 2 and "POST" not in ours[1], "a no-op sends at most two GETs"
    assert ours[0].get("POST") == 1, "create with server is one POST"
    for (name, _), o, t in zip(OPERATIONS, ours, theirs):
        assert total(o) <= total(t), f"{name}: kbv3 {o} vs official {t}"
