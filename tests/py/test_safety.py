"""The safety model of PH3-02, through the real playbooks and inventory
against hcloud-sim: it deletes exactly the legacy volumes of the reviewed,
confirmed diff, still as they were when reviewed, whatever the host
selection. Every refusal here has a positive control beside it, so a build
that refuses everything cannot pass.

Most tests use a fleet of a few servers of the seed: the seed's other
servers are then servers outside the fleet, whose volumes must survive."""
import concurrent.futures
import json
import os
import subprocess
import time

import pytest
from hcloud import Client
from hcloud.locations import Location

from conftest import ROOT, play, run, run_module
from fleetlib import API_STAGE, Fleet, mutating, summary

SMALL = ["analytics-01", "crm-01", "redis-01", "redis-02", "minio-01"]


@pytest.fixture
def small(tmp_path):
    f = Fleet(tmp_path, block_devices=False, hosts=SMALL)
    yield f
    f.cleanup()


def client(fleet):
    return Client(token=fleet.sim.token, api_endpoint=fleet.sim.endpoint)


def deleted_ids(sim, since=0):
    return {int(r["path"].rsplit("/", 1)[1]) for r in sim.requests()[since:]
            if r["method"] == "DELETE" and r["status"] == 204}


def names(fleet):
    return {v.name for v in client(fleet).volumes.get_all()}


def ph301(fleet):
    result = fleet.playbook("ph3-01.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"confirmation code: {fleet.code()}" in result.stdout
    return fleet.diff()


def test_scope_limit_and_confirmation(small):
    fleet = small
    scratch = client(fleet).volumes.create(size=10, name="vol-scratch", location=Location(name="nbg1")).volume
    since_setup = len(fleet.sim.requests())
    d = ph301(fleet)
    to_delete = {v["name"] for v in d["volumes_to_delete"]}
    assert to_delete == {"vol-analytics-01", "vol-crm-01", "vol-redis-01", "vol-redis-02", "vol-minio-01", "vol-scratch"}
    # Volumes attached to servers outside the fleet are listed apart and never for deletion.
    alone = {v["name"]: v for v in d["volumes_left_alone"]}
    assert "vol-db-master-01" in alone and "outside the fleet" in alone["vol-db-master-01"]["reason"]
    assert d["totals"]["left_alone"] == 40 - 5
    code = fleet.code()

    # --limit without the code (or with `true`, or an old-style yes) changes nothing.
    for confirm in ([], ["-e", "kbv3_confirm_destroy=true"], ["-e", "kbv3_confirm_destroy=0123456789ab"]):
        refused = fleet.playbook("ph3-02.yml", "--limit", "analytics-01", *confirm)
        assert refused.returncode != 0
        assert "This run would delete 1 volumes (20 GB): vol-analytics-01. Nothing was changed." in refused.stdout
        assert f"kbv3_confirm_destroy={code}" in refused.stdout
    # Skipping the gate does not skip the check: the deletion task itself refuses.
    skipped = fleet.playbook("ph3-02.yml", "--limit", "analytics-01", "--start-at-task", API_STAGE)
    assert skipped.returncode != 0 and "but this run has no confirmation" in skipped.stdout
    assert mutating(fleet.sim, since_setup) == []

    # Confirmed, --limit does exactly that host: its legacy volume and its new volume.
    done = fleet.playbook("ph3-02.yml", "--limit", "analytics-01", "-e", f"kbv3_confirm_destroy={code}")
    assert done.returncode == 0, done.stdout[-4000:]
    assert "deleted: 1 legacy volumes, 20 GB" in summary(done.stdout)
    ids = {v["name"]: v["id"] for v in d["volumes_to_delete"]}
    assert deleted_ids(fleet.sim) == {ids["vol-analytics-01"]}
    creates = [r for r in fleet.sim.requests()[since_setup:] if r["method"] == "POST" and r["route"] == "/volumes"]
    assert len(creates) == 1, [(r["status"], r.get("query"), r.get("fault")) for r in creates]
    left = names(fleet)
    assert {"vol-crm-01", "vol-scratch", "vol-db-master-01", "kbv3-analytics-01-data"} <= left

    # The orphans are reached only when the selection names their group.
    start = len(fleet.sim.requests())
    orphans = fleet.playbook("ph3-02.yml", "--limit", "crm-01:kbv3_orphans", "-e", f"kbv3_confirm_destroy={code}")
    assert orphans.returncode == 0, orphans.stdout[-4000:]
    assert deleted_ids(fleet.sim, start) == {ids["vol-crm-01"], scratch.id}

    # The whole run then deletes the rest of the diff and nothing outside the fleet.
    rest = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={code}")
    assert rest.returncode == 0, rest.stdout[-4000:]
    assert deleted_ids(fleet.sim) == set(ids.values())
    left = names(fleet)
    assert {v for v in alone} <= left, "every volume outside the fleet survives"
    assert {f"kbv3-{h}-data" for h in SMALL} <= left


def test_hand_edited_diffs_are_refused(small):
    fleet = small
    ph301(fleet)
    unedited = fleet.playbook("ph3-02.yml", "--check")
    assert unedited.returncode == 0, unedited.stdout[-3000:]
    original = (fleet.fleet / "volume_diff_v3.json").read_bytes()
    crm = client(fleet).servers.get_by_name("crm-01")
    target = client(fleet).volumes.create(size=20, name="kbv3-crm-01-data", server=crm)
    target.action.wait_until_finished()
    start = len(fleet.sim.requests())
    in_use = {"id": target.volume.id, "name": "kbv3-crm-01-data", "size_gb": 20, "location": "nbg1",
              "server_id": crm.id, "server_name": "crm-01", "reason": "edited"}

    def add_target(d, fix_totals):
        d["volumes_to_delete"].append(in_use)
        d["volumes_to_create"] = [c for c in d["volumes_to_create"] if c["hostname"] != "crm-01"]
        if fix_totals:
            d["totals"].update(to_delete=d["totals"]["to_delete"] + 1, to_delete_gb=d["totals"]["to_delete_gb"] + 20,
                               to_create=d["totals"]["to_create"] - 1, to_create_gb=d["totals"]["to_create_gb"] - 20,
                               existing=d["totals"]["existing"] + 1)
            d["totals"]["to_create_by_location"]["nbg1"] -= 1

    cases = [
        (lambda d: add_target(d, False), "totals do not agree with the lists"),
        (lambda d: add_target(d, True), "is a planned target volume; target volumes are never deleted"),
        (lambda d: d["volumes_to_delete"][0].pop("server_name"), "missing field `server_name`"),
        (lambda d: d["volumes_to_delete"].append(dict(d["volumes_to_delete"][0])), "totals do not agree"),
    ]
    for edit, message in cases:
        (fleet.fleet / "volume_diff_v3.json").write_bytes(original)
        fleet.edit_diff(edit)
        for args in (["--check"], ["-e", f"kbv3_confirm_destroy={fleet.code()}"]):
            result = fleet.playbook("ph3-02.yml", *args)
            out = result.stdout + result.stderr
            assert result.returncode != 0 and message in out, out[-3000:]
            assert "PLAY [" not in result.stdout, "no play starts on a refused diff"
    assert mutating(fleet.sim, start) == []
    assert "kbv3-crm-01-data" in names(fleet)


def test_a_confirmation_applies_only_to_the_bytes_it_was_given_for(small):
    fleet = small
    ph301(fleet)
    old_code = fleet.code()

    def keep_minio(d):
        # A valid edit: vol-minio-01 moves from the delete list to "left alone".
        v = next(v for v in d["volumes_to_delete"] if v["name"] == "vol-minio-01")
        d["volumes_to_delete"].remove(v)
        d["volumes_left_alone"].append({**v, "reason": "kept by hand"})
        t = d["totals"]
        t.update(to_delete=t["to_delete"] - 1, to_delete_gb=t["to_delete_gb"] - v["size_gb"],
                 left_alone=t["left_alone"] + 1, left_alone_gb=t["left_alone_gb"] + v["size_gb"])

    fleet.edit_diff(keep_minio)
    new_code = fleet.code()
    assert new_code != old_code
    old = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={old_code}")
    assert old.returncode != 0 and f"has the confirmation code {new_code}, not {old_code}" in old.stdout
    assert mutating(fleet.sim) == []
    new = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={new_code}")
    assert new.returncode == 0, new.stdout[-4000:]
    assert "vol-minio-01" in names(fleet) and "vol-redis-01" not in names(fleet)


def test_volumes_changed_since_the_review_are_left_alone(small):
    fleet = small
    c = client(fleet)
    c.volumes.create(size=10, name="vol-scratch", location=Location(name="nbg1"))
    d = ph301(fleet)
    ids = {v["name"]: v["id"] for v in d["volumes_to_delete"]}
    # After the review: the orphan is attached, one legacy volume grows, one is
    # renamed, one is moved to another fleet server.
    c.volumes.get_by_name("vol-scratch").attach(c.servers.get_by_name("crm-01")).wait_until_finished()
    c.volumes.get_by_name("vol-redis-01").resize(30).wait_until_finished()
    c.volumes.get_by_name("vol-crm-01").update(name="vol-crm-01-keep")
    moved = c.volumes.get_by_name("vol-redis-02")
    moved.detach().wait_until_finished()
    moved.attach(c.servers.get_by_name("redis-01")).wait_until_finished()

    result = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert result.returncode != 0
    lines = summary(result.stdout)
    assert "stale (left alone): 4 (vol-crm-01, vol-redis-01, vol-redis-02, vol-scratch)" in lines, lines
    # Positive control: the unchanged ones were deleted.
    assert "deleted: 2 legacy volumes, 120 GB" in lines, lines
    assert deleted_ids(fleet.sim) == {ids["vol-analytics-01"], ids["vol-minio-01"]}
    assert {"vol-scratch", "vol-redis-01", "vol-crm-01-keep", "vol-redis-02"} <= names(fleet)
    assert "size 10 GB expected, found 30 GB" in result.stdout
    assert "attached to no server expected, found attached to crm-01" in result.stdout
    assert "refresh the diff, review it" in result.stdout
    # A server that keeps a legacy volume gets no new volume next to it.
    for v in c.volumes.get_all():
        if v.name.startswith("kbv3-") and v.server is not None:
            legacy = [x.name for x in c.volumes.get_all() if x.server and x.server.id == v.server.id and x.name.startswith("vol-")]
            assert legacy == [], f"{v.server.name} has {v.name} next to {legacy}"
    assert "kbv3-analytics-01-data" in names(fleet), "positive control: a server whose legacy volume went got its new one"


def test_a_target_named_volume_is_fixed_never_deleted(small):
    fleet = small
    c = client(fleet)
    leftover = c.volumes.create(size=20, name="kbv3-crm-01-data", location=Location(name="nbg1")).volume
    d = ph301(fleet)
    assert "kbv3-crm-01-data" not in {v["name"] for v in d["volumes_to_delete"]}
    fix = d["volumes_to_fix"]
    assert [(f["volume_name"], f["fixes"]) for f in fix] == [("kbv3-crm-01-data", ["attach to crm-01"])]
    result = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "fixed: 1 volumes (attached, moved or grown)" in summary(result.stdout)
    v = c.volumes.get_by_name("kbv3-crm-01-data")
    assert (v.id, v.server.name) == (leftover.id, "crm-01")
    assert leftover.id not in deleted_ids(fleet.sim)


def test_a_detach_that_kbv3_did_not_make_is_not_taken_for_its_own(small):
    fleet = small
    d = ph301(fleet)
    ids = {v["name"]: v["id"] for v in d["volumes_to_delete"]}
    # Someone detaches a legacy volume by hand after the review: kbv3 has no record of that.
    client(fleet).volumes.get_by_name("vol-analytics-01").detach().wait_until_finished()
    result = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert result.returncode != 0
    assert "detached from analytics-01 since the review, and not by kbv3" in result.stdout
    assert "stale (left alone): 1 (vol-analytics-01)" in summary(result.stdout)
    # Positive control: the rest of the diff was deleted.
    assert deleted_ids(fleet.sim) == {i for n, i in ids.items() if n != "vol-analytics-01"}


def test_the_summary_counts_deletions_of_hosts_that_failed_later(small):
    fleet = small
    c = client(fleet)
    # crm-01's target name exists in another location: left alone, so crm-01's create fails.
    c.volumes.create(size=20, name="kbv3-crm-01-data", location=Location(name="hel1"))
    d = ph301(fleet)
    assert [v["name"] for v in d["volumes_left_alone"] if v["name"].startswith("kbv3-")] == ["kbv3-crm-01-data"]
    result = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert result.returncode != 0
    lines = summary(result.stdout)
    deleted_gb = sum(v["size_gb"] for v in d["volumes_to_delete"])
    created_gb = sum(v["size_gb"] for v in d["volumes_to_create"] if v["hostname"] != "crm-01")
    assert f"deleted: 5 legacy volumes, {deleted_gb} GB" in lines, lines
    assert f"created: 4 volumes, {created_gb} GB" in lines, lines
    assert any(line.startswith("failed hosts: 1 (crm-01)") for line in lines), lines
    assert "crm-01: Check this host's entry of the API stage (its failure, or its volume attached here with its size): volume kbv3-crm-01-data" in result.stdout
    assert "run PH3-02 again with the same code" in result.stdout
    assert len(deleted_ids(fleet.sim)) == 5


# ---- the module's own guards ----------------------------------------------------------------


def test_id_and_name_must_name_the_same_volume(sim, tmp_path):
    mismatch = play(sim, [{"kbv3_volume": {"id": 104011393, "name": "vol-minio-01", "state": "absent"},
                           "ignore_errors": True},
                          {"kbv3_volume": {"id": 104011393, "name": "vol-haproxy-02", "state": "absent"}}], tmp_path)
    refused, deleted = mismatch.tasks
    assert refused["failed"] and refused["failure"]["code"] == "identity_mismatch"
    assert refused["msg"].startswith("id 104011393 and name vol-minio-01 do not name the same volume: volume 104011393 is named vol-haproxy-02")
    assert deleted["changed"] and deleted["deleted"], "positive control: agreeing id and name delete"
    assert [r["path"] for r in sim.requests() if r["method"] == "DELETE"] == ["/v1/volumes/104011393"]


def test_an_unreadable_check_mode_flag_stops_before_any_request(sim, tmp_path):
    def module(args):
        proc = run_module({**args, "api_token": sim.token, "api_endpoint": sim.endpoint}, tmp_path)
        return json.loads(proc.stdout)

    absent = {"id": 104011392, "state": "absent"}
    for value in ("maybe", "true", 1, []):
        r = module({**absent, "_ansible_check_mode": value})
        assert r["failed"] and r["failure"]["code"] == "invalid_argument", r
        assert "_ansible_check_mode is" in r["msg"]
    assert sim.requests() == []
    # Positive control: a real boolean works, and check mode changes nothing.
    r = module({**absent, "_ansible_check_mode": True})
    assert r["changed"] and r["deleted"] and r["actions"][-1] == "delete vol-minio-01 (104011392)"
    assert sim.requests() and sim.mutating() == []


def test_a_rename_during_the_detach_stops_the_delete(start_sim, tmp_path):
    # Slow actions: the detach runs for 4 s, long after the rename below lands.
    sim = start_sim(action_ms=4000)
    c = Client(token=sim.token, api_endpoint=sim.endpoint)
    expect = lambda v: {"id": v.id, "name": v.name, "size": v.size, "location": "nbg1", "server": v.server.name}
    control = c.volumes.get_by_name("vol-haproxy-01")
    victim = c.volumes.get_by_name("vol-haproxy-02")
    book = tmp_path / "delete.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"kbv3_volume": {"id": v.id, "state": "absent", "expect": expect(v)}, "register": f"r{i}", "ignore_errors": True}
        for i, v in enumerate([control, victim])] + [
        {"ansible.builtin.copy": {"content": "{{ [r0, r1] | to_json }}", "dest": str(tmp_path / "results.json")}}]}]))
    env = dict(os.environ, HCLOUD_TOKEN=sim.token, HCLOUD_ENDPOINT=sim.endpoint, KBV3_POLL_INTERVAL_MS="100",
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
               ANSIBLE_PYTHON_INTERPRETER=str(ROOT / ".venv" / "bin" / "python"))
    proc = subprocess.Popen(["ansible-playbook", "-i", "localhost,", "-c", "local", str(book)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    detach = f"/v1/volumes/{victim.id}/actions/detach"
    deadline = time.monotonic() + 120
    while not any(r["path"] == detach for r in sim.requests()):
        assert proc.poll() is None and time.monotonic() < deadline, "the detach was never sent"
        time.sleep(0.02)  # polling an observed condition
    c.volumes.update(victim, name="vol-haproxy-02-renamed")
    out, _ = proc.communicate(timeout=180)
    control_result, victim_result = json.loads((tmp_path / "results.json").read_text())
    assert control_result["deleted"], "positive control: with slow actions a deletion still happens"
    assert victim_result["failed"] and victim_result["failure"]["code"] == "stale_plan", victim_result
    assert "name vol-haproxy-02 expected, found vol-haproxy-02-renamed" in victim_result["msg"]
    # A refusal no rerun fixes puts the volume back where this run took it from.
    assert "This run put it back on haproxy-02 as it was, and deleted nothing" in victim_result["msg"], victim_result["msg"]
    assert [r["path"] for r in sim.requests() if r["method"] == "DELETE"] == [f"/v1/volumes/{control.id}"]
    renamed = c.volumes.get_by_id(victim.id)
    assert (renamed.name, renamed.server.id) == ("vol-haproxy-02-renamed", victim.server.id)


def test_a_volume_moved_before_the_single_modules_detach_is_put_back(sim, tmp_path):
    c = Client(token=sim.token, api_endpoint=sim.endpoint)
    victim = c.volumes.get_by_name("vol-haproxy-02")
    expect = {"id": victim.id, "name": victim.name, "size": victim.size, "location": "nbg1", "server": "haproxy-02"}
    detach = f"/v1/volumes/{victim.id}/actions/detach"
    sim.hold("POST", detach)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        task = {"kbv3_volume": {"id": victim.id, "state": "absent", "expect": expect}, "ignore_errors": True}
        running = pool.submit(play, sim, [task], tmp_path)
        sim.wait_held("POST", detach)
        # Between the module's read and its detach, someone moves the volume to haproxy-01.
        v = c.volumes.get_by_id(victim.id)
        v.detach().wait_until_finished()
        v.attach(c.servers.get_by_name("haproxy-01")).wait_until_finished()
        sim.release("POST", detach)
        (r,) = running.result(timeout=300).tasks
    assert r["failed"] and r["failure"]["code"] == "stale_plan", r
    assert "it was moved to haproxy-01 during the run" in r["msg"] and "put it back on haproxy-01" in r["msg"], r["msg"]
    assert c.volumes.get_by_id(victim.id).server.name == "haproxy-01", "it ends where it was moved"
    assert [x for x in sim.requests() if x["method"] == "DELETE"] == []
    # Positive control: the same task on an unmoved volume deletes it.
    control = c.volumes.get_by_name("vol-haproxy-01")
    expect = {"id": control.id, "name": control.name, "size": control.size, "location": "nbg1", "server": "haproxy-01"}
    (r,) = play(sim, [{"kbv3_volume": {"id": control.id, "state": "absent", "expect": expect}}], tmp_path).tasks
    assert r["deleted"] and [x["path"] for x in sim.requests() if x["method"] == "DELETE"] == [f"/v1/volumes/{control.id}"]


def test_the_inventory_refuses_a_diff_for_another_fleet(fleet_dir, sim):
    api = {"KBV3_FLEET_DIR": str(fleet_dir), "HCLOUD_TOKEN": sim.token, "HCLOUD_ENDPOINT": sim.endpoint}
    inventory = str(ROOT / "inventory" / "kbv3_inventory")
    for command in ("plan", "diff"):
        run([inventory, command], env=api, check=True)
    assert run([inventory, "--list"], env=api).returncode == 0, "positive control"
    tsv = fleet_dir / "servers_v3.tsv"
    tsv.write_text(tsv.read_text() + "newbie-01\t10.0.9.1\tredis\n")
    refused = run([inventory, "--list"], env=api)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "the diff has no entry for hosts of the inventory: newbie-01" in refused.stderr
    assert "ansible-playbook -i localhost, playbooks/ph3-01.yml" in refused.stderr
