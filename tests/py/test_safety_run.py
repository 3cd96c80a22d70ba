"""The safety model *during* a PH3-02 run, through the real playbooks against
hcloud-sim: each change is guarded when it is made and checked by what its
action touched, a refused deletion is undone, every change is journaled and
recorded whatever the selection, runs over the same hosts exclude each
other, and a diff only applies to the servers it was made for.

Events are placed at exact moments with the simulator's holds: a held
request waits, before it is processed, until the test has made its change
and released it. Every refusal has a positive control beside it."""
import concurrent.futures
import json
import os
import subprocess
import time

import pytest
from hcloud.locations import Location

from conftest import ROOT, SEED, VENV_BIN, Sim, run
from fleetlib import Fleet, kill_tree, mutating, start_killable, summary
from test_safety import SMALL, client, deleted_ids, names, ph301


@pytest.fixture
def small(tmp_path):
    f = Fleet(tmp_path, block_devices=False, hosts=SMALL)
    yield f
    f.cleanup()


def start(fleet, *args, env=None):
    """Starts PH3-02 in the background; returns the process and its output file."""
    out = fleet.tmp / f"ph3-02-{len(list(fleet.tmp.glob('ph3-02-*.out')))}.out"
    full_env = dict(os.environ, **fleet.env(), **(env or {}), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                    PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    proc = subprocess.Popen(fleet.command("ph3-02.yml", *args), cwd=ROOT, env=full_env,
                            stdout=out.open("w"), stderr=subprocess.STDOUT)
    return proc, out


def finish(proc, out):
    proc.wait(timeout=600)
    return proc.returncode, out.read_text()


def next_held(sim, method, paths, proc, limit=120):
    """The first of `paths` the simulator holds (their requests go out in any order)."""
    deadline = time.monotonic() + limit
    while True:
        for path in paths:
            if (sim.holds / f"{method} {path.replace('/', '_')}.held").exists():
                return path
        assert proc.poll() is None, "the run ended before it sent any of them"
        assert time.monotonic() < deadline, f"none of {paths} was sent within {limit}s"
        time.sleep(0.02)  # polling an observed condition


def report(fleet):
    path = fleet.fleet / "ph3_02_report.json"
    return json.loads(path.read_text()) if path.exists() else []


def confirmed(fleet):
    return ["-e", f"kbv3_confirm_destroy={fleet.code()}"]


def test_a_volume_moved_during_the_run_is_never_deleted(small):
    fleet, sim = small, small.sim
    ids = {v["name"]: v["id"] for v in ph301(fleet)["volumes_to_delete"]}
    c = client(fleet)
    # Each victim is moved after the run read the lists, right before its own
    # detach goes out: to a server outside the fleet, and to another fleet server.
    moves = {"vol-redis-02": "vault-01", "vol-crm-01": "redis-01"}
    detach = {name: f"/v1/volumes/{ids[name]}/actions/detach" for name in moves}
    for path in detach.values():
        sim.hold("POST", path)
    proc, out = start(fleet, *confirmed(fleet))
    waiting = dict(detach)
    while waiting:
        path = next_held(sim, "POST", list(waiting.values()), proc)
        name = next(n for n, p in waiting.items() if p == path)
        del waiting[name]
        v = c.volumes.get_by_id(ids[name])
        v.detach().wait_until_finished()
        v.attach(c.servers.get_by_name(moves[name])).wait_until_finished()
        sim.release("POST", path)
    rc, text = finish(proc, out)
    assert rc != 0, text[-3000:]
    lines = summary(text)
    assert "stale (left alone): 2 (vol-crm-01, vol-redis-02)" in lines, lines
    assert "it was moved to vault-01 during the run" in text and "This run put it back on vault-01 as it was" in text
    # Both end where they were moved, and neither was deleted.
    for name, to in moves.items():
        assert c.volumes.get_by_id(ids[name]).server.name == to
    # Positive control: the other legacy volumes of the run were deleted.
    assert deleted_ids(sim) == {ids["vol-analytics-01"], ids["vol-redis-01"], ids["vol-minio-01"]}
    # redis-01 has a legacy volume again (vol-crm-01): its new volume stays off it.
    assert "a server never gets its new volume next to a legacy one" in text
    on_redis = [v.name for v in c.volumes.get_all() if v.server and v.server.name == "redis-01"]
    assert on_redis == ["vol-crm-01"], on_redis
    # The record: the undone detaches, and the three deletions.
    run_record = report(fleet)[-1]
    undone = [u["volume"] for h in run_record["hosts"].values() for u in h["undone"]]
    assert sorted(undone) == ["vol-crm-01", "vol-redis-02"]
    assert run_record["totals"]["deleted"] == 3


def test_a_volume_detached_by_someone_else_during_the_run_is_not_taken_for_kbv3s(small):
    fleet, sim = small, small.sim
    ids = {v["name"]: v["id"] for v in ph301(fleet)["volumes_to_delete"]}
    c = client(fleet)
    # Between the run's read and its own detach, someone detaches vol-crm-01 by hand.
    detach = f"/v1/volumes/{ids['vol-crm-01']}/actions/detach"
    sim.hold("POST", detach)
    # The held request must not time out meanwhile (a lost answer is another case).
    proc, out = start(fleet, "-e", "kbv3_api_request_timeout=900", *confirmed(fleet))
    sim.wait_held("POST", detach, proc)
    c.volumes.get_by_id(ids["vol-crm-01"]).detach().wait_until_finished()
    sim.release("POST", detach)
    rc, text = finish(proc, out)
    assert rc != 0, text[-3000:]
    assert "detached from crm-01 since the review, and not by kbv3" in text, text[-3000:]
    assert ids["vol-crm-01"] not in deleted_ids(sim) and "vol-crm-01" in names(fleet)
    # Positive control: the rest of the diff was deleted.
    assert deleted_ids(sim) == {i for n, i in ids.items() if n != "vol-crm-01"}


def test_a_deletion_refused_after_its_detach_puts_the_volume_back(small):
    fleet, sim = small, small.sim
    ids = {v["name"]: v["id"] for v in ph301(fleet)["volumes_to_delete"]}
    c = client(fleet)
    # Delete protection goes on after the run detached vol-minio-01, right before its DELETE.
    delete = f"/v1/volumes/{ids['vol-minio-01']}"
    sim.hold("DELETE", delete)
    proc, out = start(fleet, *confirmed(fleet))
    sim.wait_held("DELETE", delete, proc)
    assert c.volumes.get_by_id(ids["vol-minio-01"]).server is None, "the run detached it first"
    c.volumes.change_protection(c.volumes.get_by_id(ids["vol-minio-01"]), delete=True).wait_until_finished()
    sim.release("DELETE", delete)
    rc, text = finish(proc, out)
    assert rc != 0
    assert "deletions refused or failed: 1 (protected)" in summary(text), summary(text)
    assert "This run put it back on minio-01 as it was" in text and "Rerun to finish" not in text
    assert "lift the protection if it must go, then refresh the PH3-01 diff" in text
    v = c.volumes.get_by_id(ids["vol-minio-01"])
    assert (v.server.name, v.protection["delete"]) == ("minio-01", True)
    # Positive control: the others were deleted; minio-01 got no new volume next to its old one.
    assert deleted_ids(sim) == {i for n, i in ids.items() if n != "vol-minio-01"}
    assert "kbv3-minio-01-data" not in names(fleet) and "kbv3-crm-01-data" in names(fleet)


def test_missing_host_side_modules_stop_the_run_before_any_change(small):
    fleet = small
    ph301(fleet)
    empty = fleet.tmp / "no-collections"
    empty.mkdir()
    without = {**fleet.env(), "ANSIBLE_COLLECTIONS_PATH": str(empty), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"}
    refused = run(fleet.command("ph3-02.yml", *confirmed(fleet)), env=without)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "couldn't resolve module/action 'community.general.filesystem'" in out, out[-3000:]
    assert "Not found? Install it: ansible-galaxy collection install community.general ansible.posix" in out
    assert mutating(fleet.sim) == [] and report(fleet) == []
    # Positive control: with the collections the same command changes things.
    done = fleet.playbook("ph3-02.yml", "--limit", "analytics-01", *confirmed(fleet))
    assert done.returncode == 0, done.stdout[-3000:]
    assert len(deleted_ids(fleet.sim)) == 1


def test_selections_say_what_they_did_and_nothing_skips_the_record(small):
    fleet = small
    ids = {v["name"]: v["id"] for v in ph301(fleet)["volumes_to_delete"]}
    skipped_stage = "The API stage did not run: nothing was created or deleted."
    for selection in (["--tags", "nosuchtag"], ["--start-at-task", "Summarise the run"],
                      ["--start-at-task", "Make the filesystem and mount the volume on the server"]):
        r = fleet.playbook("ph3-02.yml", *selection, *confirmed(fleet))
        assert skipped_stage in r.stdout and "No record was written." in r.stdout, (selection, r.stdout[-3000:])
        assert "created: 0" not in r.stdout, "no summary of a run that did nothing"
    # A block's name matches no task: Ansible runs nothing (and says so).
    r = fleet.playbook("ph3-02.yml", "--start-at-task", "Volumes of this host", *confirmed(fleet))
    assert 'No matching task "Volumes of this host" found' in r.stdout + r.stderr
    assert mutating(fleet.sim) == [] and report(fleet) == []
    # Skipping the summary (tagged always) skips no record: the API stage keeps its own.
    r = fleet.playbook("ph3-02.yml", "--skip-tags", "always", "--limit", "analytics-01:crm-01", *confirmed(fleet))
    assert r.returncode == 0, r.stdout[-3000:]
    assert "TASK [Summarise the run]" not in r.stdout
    runs = report(fleet)
    assert len(runs) == 1
    recorded = sorted(v["id"] for h in runs[0]["hosts"].values() for v in h["deleted"])
    assert recorded == sorted([ids["vol-analytics-01"], ids["vol-crm-01"]]) == sorted(deleted_ids(fleet.sim))
    assert runs[0]["totals"]["created"] == 2 and runs[0]["finished_at"]


def test_overlapping_runs_exclude_each_other_and_disjoint_runs_proceed(small):
    fleet, sim = small, small.sim
    ids = {v["name"]: v["id"] for v in ph301(fleet)["volumes_to_delete"]}
    # Run 1 (analytics-01, crm-01) is held at its first detach, with its locks taken.
    first = [f"/v1/volumes/{ids[n]}/actions/detach" for n in ("vol-analytics-01", "vol-crm-01")]
    for path in first:
        sim.hold("POST", path)
    one, one_out = start(fleet, "--limit", "analytics-01:crm-01", *confirmed(fleet))
    next_held(sim, "POST", first, one)
    # Run 2 overlaps it (crm-01): it stops at once, changing nothing, naming the holder.
    before = len(sim.requests())
    two = fleet.playbook("ph3-02.yml", "--limit", "crm-01:redis-01", *confirmed(fleet))
    assert two.returncode != 0
    assert "host crm-01 is locked by run" in two.stdout and "another PH3-02 run is changing it" in two.stdout
    assert mutating(sim, before) == []
    # Every host the refused run selected is counted as not done, not only the first.
    assert "failed hosts: 2 (crm-01, redis-01)" in summary(two.stdout), summary(two.stdout)
    # Run 3 is disjoint: it finishes while run 1 is still held.
    three = fleet.playbook("ph3-02.yml", "--limit", "redis-02:minio-01", *confirmed(fleet))
    assert three.returncode == 0, three.stdout[-3000:]
    for path in first:
        sim.release("POST", path)
    rc, text = finish(one, one_out)
    assert rc == 0, text[-3000:]
    # Nothing was done twice: no DELETE met a 404, no create met a 409.
    requests = sim.requests()
    assert [r for r in requests if r["method"] == "DELETE" and r["status"] == 404] == []
    assert [r for r in requests if r["route"] == "/volumes" and r["method"] == "POST" and r["status"] == 409] == []
    assert deleted_ids(sim) == {ids[n] for n in ("vol-analytics-01", "vol-crm-01", "vol-redis-02", "vol-minio-01")}
    runs = report(fleet)
    assert sorted(r["totals"]["deleted"] for r in runs) == [2, 2], [r["totals"] for r in runs]


def test_concurrent_report_writers_lose_nothing(small):
    fleet = small
    ph301(fleet)
    assert fleet.playbook("ph3-02.yml", "--limit", "analytics-01", *confirmed(fleet)).returncode == 0
    run_id = report(fleet)[0]["run"]
    inventory = str(ROOT / "inventory" / "kbv3_inventory")

    def write(i):
        facts = {"run": run_id, "hosts": [f"extra-{i:02}"], "mountpoints": {f"extra-{i:02}": f"/data/{i}"}}
        return subprocess.run([inventory, "report", "--dir", str(fleet.fleet), "--host-side"], input=json.dumps(facts),
                              capture_output=True, text=True, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(write, range(60)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    hosts = report(fleet)[0]["hosts"]
    assert sorted(h for h in hosts if h.startswith("extra-")) == [f"extra-{i:02}" for i in range(60)]
    assert "analytics-01" in hosts, "the run's own record is still there"


def test_only_legacy_orphans_are_deleted(small):
    fleet = small
    c = client(fleet)
    nbg1 = Location(name="nbg1")
    other_team = c.volumes.create(size=10, name="team-scratch", location=nbg1).volume
    orphan = c.volumes.create(size=10, name="vol-orphan", location=nbg1).volume
    labelled = c.volumes.create(size=10, name="old-thing", location=nbg1, labels={"team": "legacy"}).volume
    # The default selector (vol-*): the other team's volume is left alone, and says why.
    d = ph301(fleet)
    assert {"vol-orphan"} <= {v["name"] for v in d["volumes_to_delete"]}
    alone = {v["name"]: v["reason"] for v in d["volumes_left_alone"]}
    assert "not a legacy volume" in alone["team-scratch"] and "old-thing" in alone
    assert d["legacy_selector"] == {"names": ["vol-*"], "label_selector": None}
    # A label selector adds the labelled one; PH3-02 deletes the legacy orphans only.
    r = fleet.playbook("ph3-01.yml", "-e", json.dumps({"kbv3_legacy_label_selector": "team=legacy"}))
    assert r.returncode == 0, r.stdout[-3000:]
    d = fleet.diff()
    assert {"vol-orphan", "old-thing"} <= {v["name"] for v in d["volumes_to_delete"]}
    assert "team-scratch" in {v["name"] for v in d["volumes_left_alone"]}
    # A selection without the orphans' pseudo-host says which orphans it leaves.
    dry = fleet.playbook("ph3-02.yml", "--check", "--limit", "kbv3")
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert "unattached legacy volumes not selected: vol-orphan, old-thing" in dry.stdout, dry.stdout[-3000:]
    done = fleet.playbook("ph3-02.yml", *confirmed(fleet))
    assert "unattached legacy volumes not selected: none" in done.stdout, done.stdout[-3000:]
    assert done.returncode == 0, done.stdout[-3000:]
    assert {orphan.id, labelled.id} <= deleted_ids(fleet.sim)
    assert other_team.id not in deleted_ids(fleet.sim) and "team-scratch" in names(fleet)


def test_an_orphan_relabelled_since_the_review_is_left_alone(small):
    fleet = small
    c = client(fleet)
    kept = c.volumes.create(size=10, name="old-thing", location=Location(name="nbg1"), labels={"team": "legacy"}).volume
    r = fleet.playbook("ph3-01.yml", "-e", json.dumps({"kbv3_legacy_label_selector": "team=legacy,!keep"}))
    assert r.returncode == 0, r.stdout[-3000:]
    assert "old-thing" in {v["name"] for v in fleet.diff()["volumes_to_delete"]}
    # After the review, someone marks it to keep: the selector would no longer choose it.
    c.volumes.update(c.volumes.get_by_id(kept.id), labels={"team": "legacy", "keep": "yes"})
    done = fleet.playbook("ph3-02.yml", *confirmed(fleet))
    assert done.returncode != 0
    assert "labels {team=legacy} expected, found {keep=yes, team=legacy}" in done.stdout, done.stdout[-3000:]
    assert kept.id not in deleted_ids(fleet.sim) and "old-thing" in names(fleet)
    # Positive control: the legacy volumes of the fleet's hosts were deleted.
    assert len(deleted_ids(fleet.sim)) == len(SMALL)


def test_a_diff_made_for_other_servers_changes_nothing(small, tmp_path):
    fleet = small
    ph301(fleet)
    # Project B: the same names, sizes and volume ids, other server ids.
    seed = json.loads(SEED.read_text())
    for s in seed["servers"]:
        s["id"] += 1000
    (tmp_path / "seed-b.json").write_text(json.dumps(seed))
    other = Sim(tmp_path, seed=tmp_path / "seed-b.json", action_ms=20)
    try:
        env = {**fleet.env(), "HCLOUD_ENDPOINT": other.endpoint}
        refused = run(fleet.command("ph3-02.yml", *confirmed(fleet)), env=env)
        assert refused.returncode != 0
        assert "was made for other servers (another project?)" in refused.stdout, refused.stdout[-3000:]
        assert "analytics-01 is server 60101001 here, the diff says 60100001" in refused.stdout
        assert other.mutating() == []
    finally:
        other.stop()
    # Positive control: against the project it was made for, it runs.
    done = fleet.playbook("ph3-02.yml", "--limit", "analytics-01", *confirmed(fleet))
    assert done.returncode == 0, done.stdout[-3000:]
    assert len(deleted_ids(fleet.sim)) == 1


def test_killed_runs_are_finished_by_a_plain_rerun_and_recorded_once(small):
    fleet, sim = small, small.sim
    ids = {v["name"]: v["id"] for v in ph301(fleet)["volumes_to_delete"]}
    c = client(fleet)
    # Run 1 is killed between its detach of vol-analytics-01 and its DELETE:
    # held at the re-read that comes between them.
    detach = f"/v1/volumes/{ids['vol-analytics-01']}/actions/detach"
    sim.hold("POST", detach)
    one = start_killable(fleet.command("ph3-02.yml", "--limit", "analytics-01", *confirmed(fleet)), fleet.env())
    sim.wait_held("POST", detach, one)
    sim.hold("GET", "/v1/volumes")
    sim.release("POST", detach)
    sim.wait_held("GET", "/v1/volumes", one)
    kill_tree(one)
    sim.release("GET", "/v1/volumes")
    assert c.volumes.get_by_id(ids["vol-analytics-01"]).server is None, "left detached by the killed run"
    # Run 2 is killed after its DELETE of vol-crm-01 reached the API, before the answer.
    delete = f"/v1/volumes/{ids['vol-crm-01']}"
    sim.hold("DELETE", delete)
    two = start_killable(fleet.command("ph3-02.yml", "--limit", "crm-01", *confirmed(fleet)), fleet.env())
    sim.wait_held("DELETE", delete, two)
    kill_tree(two)
    sim.release("DELETE", delete)
    # A plain rerun (same code, no refresh) finishes both.
    rerun = fleet.playbook("ph3-02.yml", "--limit", "analytics-01:crm-01", *confirmed(fleet))
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert deleted_ids(sim) == {ids["vol-analytics-01"], ids["vol-crm-01"]}
    assert "this run read the API and recorded what became of them" in rerun.stdout + rerun.stderr
    runs = report(fleet)
    assert [r["finished_at"] is None for r in runs] == [True, True, False], "the killed runs are recorded as such"
    deleted = {v["id"]: (r["run"], v.get("resolved_by")) for r in runs for h in r["hosts"].values() for v in h["deleted"]}
    assert sorted(deleted) == sorted([ids["vol-analytics-01"], ids["vol-crm-01"]]), "each deletion recorded once"
    assert deleted[ids["vol-crm-01"]] == (runs[1]["run"], runs[2]["run"]), "by the killed run, found out by the rerun"
    assert deleted[ids["vol-analytics-01"]] == (runs[2]["run"], None), "by the rerun, after the killed run's detach"
    assert not any(h["unknown"] for r in runs for h in r["hosts"].values())
