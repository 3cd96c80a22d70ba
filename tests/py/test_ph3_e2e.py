"""PH3-01 and PH3-02 end to end: the real playbooks, the real inventory, the
simulator with loop-device-backed volumes, real mkfs and mount for a subset of
servers (the rest exercise the API path with the host side skipped)."""
import json
import subprocess

# The fleet fixtures are imported for pytest to find them.
from fleetlib import api_fleet, fleet, slow_fleet  # noqa: F401
from fleetlib import failures, kill_when, mutating, needs_root, recap, start_killable, summary

@needs_root
def test_ph3_dry_run_real_run_and_rerun(fleet):
    ph301 = fleet.playbook("ph3-01.yml")
    assert ph301.returncode == 0, ph301.stdout + ph301.stderr
    d = fleet.diff()
    assert (d["totals"]["to_create"], d["totals"]["to_delete"], d["totals"]["ok"]) == (47, 40, 0)
    planned_deletes = {v["id"] for v in d["volumes_to_delete"]}

    # Dry run: predictions and diffs, and not one mutating request.
    start = len(fleet.sim.requests())
    dry = fleet.playbook("ph3-02.yml", "--check", "--diff")
    assert dry.returncode == 0, dry.stdout
    assert "would create: 47 volumes, 2800 GB" in summary(dry.stdout)
    assert "would delete: 40 legacy volumes, 1710 GB" in summary(dry.stdout)
    assert "+++ after: volume kbv3-minio-01-data (after)" in dry.stdout
    assert mutating(fleet.sim, start) == []
    report = fleet.fleet / "ph3_02_report.json"
    assert not report.exists(), "a dry run records nothing"

    # The code PH3-01 printed is the one of the file's bytes; the dry run shows it too.
    code = fleet.code()
    assert f"confirmation code: {code}" in ph301.stdout and f"confirmation code: {code}" in dry.stdout

    # Without the confirmation code (and with `true`, which is no code) nothing happens.
    start = len(fleet.sim.requests())
    for confirm in ([], ["-e", "kbv3_confirm_destroy=true"]):
        refused = fleet.playbook("ph3-02.yml", *confirm)
        assert refused.returncode != 0 and f"kbv3_confirm_destroy={code}" in refused.stdout, refused.stdout[-3000:]
        assert "This run would delete 40 volumes (1710 GB)" in refused.stdout
    assert mutating(fleet.sim, start) == []

    # The real run.
    real = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={code}")
    assert real.returncode == 0, failures(real.stdout)
    assert "created: 47 volumes, 2800 GB" in summary(real.stdout)
    assert "deleted: 40 legacy volumes, 1710 GB" in summary(real.stdout)
    volumes, _ = fleet.volumes()
    assert sorted(volumes) == sorted(v["volume_name"] for v in d["volumes_to_create"])
    for c in d["volumes_to_create"]:
        v = volumes[c["volume_name"]]
        role = next(line.split("\t")[2] for line in (fleet.fleet / "servers_v3.tsv").read_text().splitlines()
                    if line.split("\t")[0] == c["hostname"])
        assert (v.server.id, v.size, v.labels["role_v3"], v.labels["managed-by"]) == (c["server_id"], c["size_gb"], role, "kbv3")
    deleted = {int(r["path"].rsplit("/", 1)[1]) for r in fleet.sim.requests() if r["method"] == "DELETE"}
    assert deleted == planned_deletes, "exactly the volumes the diff lists were deleted"

    # The run is recorded: what each host had deleted and created, with the code it acted on.
    runs = json.loads(report.read_text())
    assert len(runs) == 1 and runs[0]["confirmation_code"] == code
    minio = runs[0]["hosts"]["minio-01"]
    assert [v["name"] for v in minio["deleted"]] == ["vol-minio-01"] and minio["deleted"][0]["former_server"] == "minio-01"
    assert minio["created"]["name"] == "kbv3-minio-01-data" and minio["created"]["mountpoint"].endswith("/data/minio")
    assert minio["created"]["device"] == volumes["kbv3-minio-01-data"].linux_device
    assert {v["id"] for h in runs[0]["hosts"].values() for v in h["deleted"]} == planned_deletes
    assert (runs[0]["totals"]["created"], runs[0]["totals"]["deleted"]) == (47, 40)
    assert f"confirmation code `{code}`" in (fleet.fleet / "ph3_02_report.md").read_text()

    # Real filesystems, mounted by UUID at /data/<class>, with nofail fstab entries.
    mounts = fleet.mounts()
    want = {"minio-01": "/data/minio", "db-postgres-01": "/data/db_postgres", "redis-01": "/data/redis",
            "mail-mx-01": "/data/mail_mx", "builder-01": "/data/builder", "haproxy-01": "/data/lb_internal",
            "crm-01": "/data/apps_misc"}
    assert sorted(mounts) == sorted(f"{fleet.mnt}{p}" for p in want.values())
    assert all(m["fstype"] == "ext4" for m in mounts.values())
    fstab = fleet.fstab_lines()
    assert len(fstab) == 7 and all(f[0].startswith("UUID=") and "nofail" in f[3] for f in fstab)
    uuids = {f[1]: f[0] for f in fstab}

    # Data written to a new volume survives a rerun, which changes nothing.
    marker = fleet.mnt / "data" / "minio" / "precious.txt"
    marker.write_text("keep me")
    start = len(fleet.sim.requests())
    again = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={code}")
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(r["changed"] == 0 for r in recap(again.stdout).values()), recap(again.stdout)
    assert mutating(fleet.sim, start) == []
    assert marker.read_text() == "keep me"
    runs = json.loads(report.read_text())
    assert len(runs) == 2 and runs[1]["totals"]["created"] == 0, "the rerun is appended; the first run stays"
    assert "## Run 1" in (fleet.fleet / "ph3_02_report.md").read_text()
    fstab_again = fleet.fstab_lines()
    assert {f[1]: f[0] for f in fstab_again} == uuids, "no filesystem was recreated"


@needs_root
def test_interrupted_runs_converge(slow_fleet):
    fleet = slow_fleet
    assert fleet.playbook("ph3-01.yml").returncode == 0
    planned_deletes = {v["id"] for v in fleet.diff()["volumes_to_delete"]}
    requests = lambda: fleet.sim.requests()
    posts = lambda since, action: [r for r in requests()[since:] if r["method"] == "POST" and r["route"] == action]
    # The API stage runs the detaches, then the deletes, then the creates; then the mounts.
    stages = [
        ("the first detach", lambda since: len(posts(since, "/volumes/{id}/actions/detach")) >= 1),
        ("the first legacy delete", lambda since: any(r["method"] == "DELETE" for r in requests()[since:])),
        ("half of the creates", lambda since: len(posts(since, "/volumes")) >= 24),
        ("the first mount", lambda since: fleet.fstab_lines() != []),
    ]
    for i, (what, condition) in enumerate(stages):
        command = fleet.command("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
        since = len(requests())
        kill_when(start_killable(command, fleet.env()), lambda: condition(since), what)
        if i == 2:
            # Refresh the diff mid-way: target volumes that exist now count as ok.
            assert fleet.playbook("ph3-01.yml").returncode == 0
            assert fleet.diff()["totals"]["ok"] >= 1
    final = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert final.returncode == 0, failures(final.stdout)
    volumes, _ = fleet.volumes()
    assert len(volumes) == 47 and all(n.startswith("kbv3-") and v.server is not None for n, v in volumes.items())
    deleted = {int(r["path"].rsplit("/", 1)[1]) for r in requests() if r["method"] == "DELETE" and r["status"] == 204}
    assert deleted == planned_deletes, "no volume outside the diff was ever deleted"
    assert len(fleet.mounts()) == 7
    for uuid, target, *_ in fleet.fstab_lines():
        source = subprocess.run(["findmnt", "-n", "-o", "UUID", target], capture_output=True, text=True).stdout.strip()
        assert uuid == f"UUID={source}", "every mount is the filesystem first made for it"
    assert len(fleet.fstab_lines()) == 7
    # The record: every deletion of the killed runs and the final one, each exactly once.
    runs = json.loads((fleet.fleet / "ph3_02_report.json").read_text())
    recorded = [v["id"] for run in runs for h in run["hosts"].values() for v in h["deleted"]]
    assert sorted(recorded) == sorted(planned_deletes), "each deleted volume is recorded once"
    # The last kill came after the API stage ended (at the first mount).
    assert [r["finished_at"] is None for r in runs] == [True, True, True, False, False], "three runs killed in the API stage"
    assert not any(h["unknown"] for run in runs for h in run["hosts"].values()), "every killed request was resolved"


def test_a_volume_changed_since_the_diff_is_left_alone(api_fleet):
    fleet = api_fleet
    _, client = fleet.volumes()
    # An orphan: a legacy volume attached to no server, so to no inventory host.
    from hcloud.locations import Location
    orphan = client.volumes.create(size=10, name="vol-scratch", location=Location(name="nbg1")).volume
    assert fleet.playbook("ph3-01.yml").returncode == 0
    assert fleet.diff()["totals"]["to_delete"] == 41
    moved = client.volumes.get_by_name("vol-redis-01")
    moved.detach().wait_until_finished()
    moved.attach(client.servers.get_by_name("redis-02")).wait_until_finished()
    result = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert result.returncode != 0
    assert "stale (left alone): 1 (vol-redis-01)" in summary(result.stdout)
    assert "run playbooks/ph3-01.yml to refresh the diff" in result.stdout
    # 39 host legacy volumes (vol-redis-01, 10 GB, is stale) plus the 10 GB orphan.
    assert "deleted: 40 legacy volumes, 1710 GB" in summary(result.stdout), summary(result.stdout)
    assert "the plan is stale for volume vol-redis-01" in result.stdout
    volumes, _ = fleet.volumes()
    assert volumes["vol-redis-01"].server.id == client.servers.get_by_name("redis-02").id
    assert len([n for n in volumes if n.startswith("vol-")]) == 1, "only the stale one is left"
    assert "vol-scratch" not in volumes and orphan.id not in [v.id for v in volumes.values()]
    # redis-02 holds the stale legacy volume: it gets no new volume next to it; the 46 others do.
    assert sorted(n for n in volumes if n.startswith("kbv3-")) == sorted(
        f"kbv3-{c['hostname']}-data" for c in fleet.diff()["volumes_to_create"] if c["hostname"] != "redis-02")
    assert "server redis-02 still has its legacy volume vol-redis-01" in result.stdout


def test_preflight_refuses_a_stale_or_missing_diff(api_fleet):
    fleet = api_fleet
    missing = fleet.playbook("ph3-02.yml", "--check")
    assert missing.returncode != 0 and "Run `ansible-playbook playbooks/ph3-01.yml`" in missing.stdout
    assert fleet.playbook("ph3-01.yml").returncode == 0
    tsv = fleet.fleet / "servers_v3.tsv"
    tsv.write_text("\n".join(line for line in tsv.read_text().splitlines() if not line.startswith("vault-01")) + "\n")
    stale = fleet.playbook("ph3-02.yml", "--check")
    out = stale.stdout + stale.stderr
    assert stale.returncode != 0 and "the diff names hosts that are not in the inventory: vault-01" in out, out
    assert mutating(fleet.sim) == []
