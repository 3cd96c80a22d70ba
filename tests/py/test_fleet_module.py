"""kbv3_volumes, the fleet module, run as Ansible runs it (an args file in,
one JSON object out) against hcloud-sim: results per host, check mode, a
no-op, a volume that changes between the first read and its DELETE, partial
failure, 429s, and a generated 1,000-server fleet within its request budget.
Requests are counted from the simulator's log; nothing is timed."""
import json
import math
import subprocess
import sys

from hcloud import Client

from conftest import INVENTORY, ROOT, SEED, Sim, run, run_module

SEED_DATA = json.loads(SEED.read_text())


def seed_volume(name):
    return next(v for v in SEED_DATA["volumes"] if v["name"] == name)


def deletion(name, host):
    """A guarded deletion of an attached seed volume, with the complete expect a reviewed diff gives."""
    v = seed_volume(name)
    location = next(s["location"] for s in SEED_DATA["servers"] if s["name"] == v["server"])
    return {"host": host, "id": v["id"],
            "expect": {"id": v["id"], "name": name, "size": v["size"], "location": location, "server": v["server"]}}


def volumes(sim, tmp_path, args, check=False, diff=False):
    args = {**args, "api_token": sim.token, "api_endpoint": sim.endpoint,
            "_ansible_check_mode": check, "_ansible_diff": diff}
    proc = run_module(args, tmp_path, module="kbv3_volumes", env={"KBV3_POLL_INTERVAL_MS": "20"})
    assert sim.token not in proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def list_pages(sim):
    """The GETs one paged read of all servers and all volumes costs now."""
    c = Client(token=sim.token, api_endpoint=sim.endpoint)
    return math.ceil(len(c.servers.get_all()) / 50) + math.ceil(len(c.volumes.get_all()) / 50)


ARGS = {
    "volumes": [
        {"host": "analytics-01", "name": "kbv3-analytics-01-data", "size": 20, "server": "analytics-01",
         "labels": {"role_v3": "apps_misc"}},
        {"host": "crm-01", "name": "kbv3-crm-01-data", "size": 20, "server": "crm-01"},
        # A host whose server does not exist: it fails alone.
        {"host": "ghost-01", "name": "kbv3-ghost-01-data", "size": 20, "server": "ghost-01"},
    ],
    "deletions": [deletion("vol-analytics-01", "analytics-01"), deletion("vol-crm-01", "crm-01")],
}


def test_check_mode_reads_and_predicts_then_the_run_converges_and_a_rerun_only_lists(sim, tmp_path):
    pages = list_pages(sim)
    start = len(sim.requests())
    rc, dry = volumes(sim, tmp_path, ARGS, check=True, diff=True)
    assert rc == 0, dry
    assert {r["method"] for r in sim.requests()[start:]} == {"GET"} and len(sim.requests()) - start == pages
    analytics = dry["hosts"]["analytics-01"]
    legacy = seed_volume("vol-analytics-01")["id"]
    assert analytics["actions"] == [f"detach vol-analytics-01 ({legacy}) from analytics-01", f"delete vol-analytics-01 ({legacy})",
                                    "create kbv3-analytics-01-data (20 GB) in nbg1, attached to analytics-01"]
    assert analytics["volume"]["server_name"] == "analytics-01" and analytics["volume"]["id"] is None
    assert analytics["created"] and [v["name"] for v in analytics["deleted"]] == ["vol-analytics-01"]
    assert {d["after_header"] for d in dry["diff"]} >= {"volume kbv3-analytics-01-data (after)"}
    assert dry["changed"] and dry["msg"].startswith("would create 2 volumes (40 GB)")

    # The real run: each host reads its own entry; the failing host fails alone.
    start = len(sim.requests())
    rc, real = volumes(sim, tmp_path, ARGS)
    assert rc == 0 and not real.get("failed"), real
    for host in ("analytics-01", "crm-01"):
        h = real["hosts"][host]
        assert not h["failed"] and h["created"] and h["changed"], h
        assert h["volume"]["server_name"] == host and h["volume"]["linux_device"].startswith("/dev/disk/by-id/")
    ghost = real["hosts"]["ghost-01"]
    assert ghost["failed"] and ghost["failure"]["code"] == "not_found" and "ghost-01" in ghost["msg"]
    assert real["totals"]["failed_hosts"] == ["ghost-01"] and any("ghost-01" in w for w in real["warnings"])
    assert (real["totals"]["created"], real["totals"]["deleted"]) == (2, 2)
    methods = [r["method"] for r in sim.requests()[start:]]
    # Two paged reads, 2 detaches, 2 creates, batched polls, 1 re-read, 2 deletes.
    assert methods.count("POST") == 4 and methods.count("DELETE") == 2
    assert real["api_requests"]["requests"]["GET"] == methods.count("GET") <= 2 * pages + 1 + 4
    c = Client(token=sim.token, api_endpoint=sim.endpoint)
    names = {v.name: v for v in c.volumes.get_all()}
    assert "vol-analytics-01" not in names and "vol-crm-01" not in names
    assert names["kbv3-crm-01-data"].server.id == c.servers.get_by_name("crm-01").id

    # A rerun without the failing host: only the paged lists, no change.
    ok = {**ARGS, "volumes": ARGS["volumes"][:2]}
    start = len(sim.requests())
    rc, again = volumes(sim, tmp_path, ok)
    assert rc == 0 and not again["changed"], again
    assert [r["method"] for r in sim.requests()[start:]] == ["GET"] * list_pages(sim)
    crm = seed_volume("vol-crm-01")["id"]
    assert again["totals"]["ok"] == 2 and again["hosts"]["crm-01"]["msg"] == (
        f"volume vol-crm-01 ({crm}) does not exist (no change) | volume kbv3-crm-01-data "
        f"({real['hosts']['crm-01']['volume']['id']}) is as requested (no change)")


def test_a_volume_changed_between_the_first_read_and_its_delete_is_left_alone(start_sim, tmp_path):
    # Slow actions: the rename lands while the module waits for the detaches.
    sim = start_sim(action_ms=4000)
    args = {**ARGS, "volumes": [], "api_token": sim.token, "api_endpoint": sim.endpoint}
    path = tmp_path / "args.json"
    path.write_text(json.dumps(args))
    proc = subprocess.Popen([str(ROOT / "library" / "kbv3_volumes"), str(path)], stdout=subprocess.PIPE, text=True,
                            env={"KBV3_POLL_INTERVAL_MS": "50", "PATH": "/usr/bin:/bin"})
    crm = seed_volume("vol-crm-01")["id"]
    detached = lambda: any(r["method"] == "POST" and r["path"] == f"/v1/volumes/{crm}/actions/detach"
                           for r in sim.requests())
    while not detached():
        assert proc.poll() is None, "the module ended before detaching"
    c = Client(token=sim.token, api_endpoint=sim.endpoint)
    c.volumes.update(c.volumes.get_by_id(crm), name="vol-crm-01-renamed")
    out, _ = proc.communicate(timeout=120)
    result = json.loads(out)
    log = sim.requests()
    rename = next(i for i, r in enumerate(log) if r["method"] == "PUT")
    relist = max(i for i, r in enumerate(log) if r["method"] == "GET" and r["route"] == "/volumes")
    assert rename < relist, "the fault happened between the first read and the re-read before the deletes"
    crm_host = result["hosts"]["crm-01"]
    assert [s["volume"]["name"] for s in crm_host["stale"]] == ["vol-crm-01"], crm_host
    assert "name vol-crm-01 expected, found vol-crm-01-renamed" in crm_host["stale"][0]["msg"]
    assert not crm_host["failed"] and result["totals"]["stale"] == 1
    assert not any(r["method"] == "DELETE" and r["path"].endswith(f"/{crm}") for r in log)
    assert c.volumes.get_by_id(crm).name == "vol-crm-01-renamed"
    # Positive control: the unchanged volume was deleted.
    assert [v["name"] for v in result["hosts"]["analytics-01"]["deleted"]] == ["vol-analytics-01"]
    assert c.volumes.get_by_name("vol-analytics-01") is None


def test_429s_are_absorbed_and_a_small_budget_is_paced(start_sim, tmp_path):
    # Injected 429s (with RateLimit-* headers) are waited out.
    faulty = start_sim("--faults", "429=0.3", "--fault-seed", "7")
    rc, result = volumes(faulty, tmp_path, {**ARGS, "volumes": ARGS["volumes"][:2]})
    assert rc == 0 and result["totals"]["created"] == 2 and result["totals"]["deleted"] == 2, result
    assert sum(r["status"] == 429 for r in faulty.requests()) >= 1, "the fault happened"
    # A budget of 10 requests per second, 30 at most: the module spaces its
    # requests instead of running into the limit.
    tight = start_sim("--rate-limit", "30", "--rate-window", "3")
    rc, result = volumes(tight, tmp_path, {**ARGS, "volumes": ARGS["volumes"][:2], "concurrency": 8})
    assert rc == 0 and result["totals"]["created"] == 2, result
    statuses = [r["status"] for r in tight.requests()]
    assert len(statuses) >= 10 and 429 not in statuses, statuses


def test_bad_options_are_refused_before_any_request(sim, tmp_path):
    cases = [
        ({"deletions": [{"id": 5}]}, "deletions[0] (volume 5): give expect"),
        ({"volumes": [{"name": "v", "size": 5, "server": "crm-01"}]}, "argument 'volumes[0].size': must be between 10 and 10240 (GB), got 5"),
        ({"volumes": [{"size": 10}]}, "volumes[0]: name is required"),
        ({"concurrency": 0}, "argument 'concurrency': must be between 1 and 64"),
        ({"volumes": [{"name": "v", "size": 10, "server": "crm-01", "colour": 1}]}, "unknown field `colour`"),
        ({"deletions": [{"id": 5, "expect": {"id": 5}}], "confirm": "x"}, "argument 'confirm': goes with diff_file"),
        ({"volumes": [{"name": "v", "size": 10, "server": "a"}, {"name": "v", "size": 10, "server": "a"}]}, "volume v is listed twice"),
    ]
    for args, want in cases:
        rc, result = volumes(sim, tmp_path, args)
        assert rc != 0 and result["failure"]["code"] == "invalid_argument" and want in result["msg"], (args, result)
    assert sim.requests() == []
    # Positive control: the same shapes, valid, are accepted.
    rc, result = volumes(sim, tmp_path, {"volumes": [{"name": "v", "size": 10, "server": "crm-01"}]}, check=True)
    assert rc == 0 and result["hosts"]["crm-01"]["actions"] == ["create v (10 GB) in nbg1, attached to crm-01"]


def test_a_generated_fleet_of_1000_servers_converges_within_four_requests_per_host(tmp_path):
    fleet = tmp_path / "fleet1000"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_fleet.py"), "1000", str(fleet)],
                   capture_output=True, text=True, check=True)
    sim = Sim(tmp_path, "--rate-limit", "3600", seed=fleet / "hcloud-sim-seed.json")
    try:
        env = {"KBV3_FLEET_DIR": str(fleet), "HCLOUD_TOKEN": sim.token, "HCLOUD_ENDPOINT": sim.endpoint}
        for command in ("plan", "diff"):
            run([str(INVENTORY), command], env=env, check=True)
        inv = json.loads(run([str(INVENTORY), "--list"], env=env, check=True).stdout)
        hv = inv["_meta"]["hostvars"]
        args = {"volumes": [{"host": h, "name": v["kbv3_volume_name"], "size": v["kbv3_volume_size"], "server": h}
                            for h, v in hv.items() if "kbv3_volume_name" in v],
                "deletions": [{"host": h, "id": d["id"]} for h, v in hv.items() for d in v.get("kbv3_legacy_volumes", [])],
                "diff_file": str(fleet / "volume_diff_v3.json"),
                "confirm": inv["all"]["vars"]["kbv3_diff"]["confirmation_code"]}
        start = len(sim.requests())
        rc, result = volumes(sim, tmp_path, args)
        assert rc == 0 and result["totals"]["failed_hosts"] == [], result["msg"]
        assert (result["totals"]["created"], result["totals"]["deleted"]) == (1000, len(args["deletions"]))
        log = sim.requests()[start:]
        assert 429 not in {r["status"] for r in log}
        assert len(log) <= 4 * 1000, f"{len(log)} requests for 1,000 hosts"
        start = len(sim.requests())
        rc, again = volumes(sim, tmp_path, {**args, "deletions": []})
        assert rc == 0 and not again["changed"]
        assert len(sim.requests()) - start <= 0.2 * 1000
    finally:
        sim.stop()


def test_a_failed_create_is_reported_as_the_create(start_sim, tmp_path):
    # Every action fails: the create's, and the attach that depended on it.
    sim = start_sim("--faults", "action_error=1")
    args = {"volumes": [{"host": "crm-01", "name": "kbv3-crm-01-data", "size": 20, "server": "crm-01"}]}
    rc, r = volumes(sim, tmp_path, args)
    failure = r["hosts"]["crm-01"]["failure"]
    assert failure["code"] == "action_failed" and failure["step"] == "create kbv3-crm-01-data (20 GB) in nbg1, attached to crm-01"
    log = sim.requests()
    assert failure["action_id"] is not None
    msg = r["hosts"]["crm-01"]["msg"]
    assert msg.startswith("create kbv3-crm-01-data (20 GB) in nbg1, attached to crm-01 failed: action create_volume"), msg
    assert "what depended on it did not run (attach_volume)" in msg, msg
    assert [x for x in log if x["method"] == "POST"], "the create was sent (the fault is the action's)"
