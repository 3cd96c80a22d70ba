"""PH3-01 and PH3-02 end to end: the real playbooks, the real inventory, the
simulator with loop-device-backed volumes, real mkfs and mount for a subset of
servers (the rest exercise the API path with the host side skipped)."""
import collections
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import ROOT, VENV_BIN, Sim, run

# Several roles, one server in hel1 (mail-mx-01), one without a legacy volume (builder-01).
REAL_HOSTS = ["minio-01", "db-postgres-01", "redis-01", "mail-mx-01", "builder-01", "haproxy-01", "crm-01"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and mounts need root")


class Fleet:
    """A simulator, a private fleet folder, a mount root and an inventory overlay."""

    def __init__(self, tmp_path, block_devices):
        self.tmp = tmp_path
        self.fleet = tmp_path / "fleet"
        self.fleet.mkdir()
        for name in ("servers_v3.tsv", "volume_rules_v3.tsv"):
            (self.fleet / name).write_bytes((ROOT / "servers" / name).read_bytes())
        self.mnt = tmp_path / "mnt"
        # One fstab per simulated host, as real servers have: several hosts
        # rewriting one shared file at once would lose each other's lines.
        self.fstabs = tmp_path / "fstab.d"
        self.fstabs.mkdir()
        extra = []
        if block_devices:
            extra = ["--block-devices", str(tmp_path / "bd"), "--block-device-servers", ",".join(REAL_HOSTS)]
        self.sim = Sim(tmp_path, *extra)
        hosts = [line.split("\t")[0] for line in (self.fleet / "servers_v3.tsv").read_text().splitlines()[1:]]
        overlay = {"all": {"hosts": {h: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                                         "kbv3_host_side": block_devices and h in REAL_HOSTS,
                                         "kbv3_fstab": str(self.fstabs / h)} for h in hosts}}}
        self.overlay = tmp_path / "overlay.yml"
        self.overlay.write_text(json.dumps(overlay))
        self.extra_vars = json.dumps({"kbv3_mount_prefix": str(self.mnt)})

    def fstab_lines(self):
        """Every fstab line of every simulated host, split into fields."""
        return [line.split() for f in sorted(self.fstabs.iterdir()) for line in f.read_text().splitlines() if line.strip()]

    def env(self):
        return {"KBV3_FLEET_DIR": str(self.fleet), "HCLOUD_TOKEN": self.sim.token, "HCLOUD_ENDPOINT": self.sim.endpoint,
                "KBV3_POLL_INTERVAL_MS": "20", "KBV3_RETRY_BASE_MS": "50",
                "ANSIBLE_PYTHON_INTERPRETER": str(VENV_BIN / "python")}

    def command(self, playbook, *args):
        return ["ansible-playbook", "-i", str(ROOT / "inventory" / "kbv3_inventory"), "-i", str(self.overlay),
                "-e", self.extra_vars, str(ROOT / "playbooks" / playbook), *args]

    def playbook(self, playbook, *args):
        return run(self.command(playbook, *args), env=self.env(), timeout=900)

    def diff(self):
        return json.loads((self.fleet / "volume_diff_v3.json").read_text())

    def volumes(self):
        from hcloud import Client
        client = Client(token=self.sim.token, api_endpoint=self.sim.endpoint)
        return {v.name: v for v in client.volumes.get_all()}, client

    def mounts(self):
        out = subprocess.run(["findmnt", "-J", "-l", "-o", "SOURCE,TARGET,FSTYPE"], capture_output=True, text=True).stdout
        return {m["target"]: m for m in json.loads(out)["filesystems"] if m["target"].startswith(str(self.mnt))}

    def cleanup(self):
        for target in sorted(self.mounts(), reverse=True):
            subprocess.run(["umount", "-l", target], check=False)
        self.sim.stop()
        # If the simulator died without releasing its loop devices, release them here.
        listing = subprocess.run(["losetup", "-J", "-l"], capture_output=True, text=True).stdout or '{"loopdevices": []}'
        for dev in json.loads(listing).get("loopdevices", []):
            if (dev.get("back-file") or "").startswith(str(self.tmp)):
                subprocess.run(["losetup", "-d", dev["name"]], check=False)


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path, block_devices=os.geteuid() == 0)
    yield f
    f.cleanup()


def recap(stdout):
    """host -> {ok, changed, failed, ...} from the PLAY RECAP."""
    out = {}
    for host, fields in re.findall(r"^(\S+)\s+: (ok=.*)$", stdout, re.M):
        out[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return out


def summary(stdout):
    block = stdout[stdout.rindex("TASK [Summarise the run]"):]
    return re.findall(r"- '?([a-z ()]+: [^'\n]+)'?", block)


def failures(stdout):
    """The failed tasks of a run, for assertion messages."""
    blocks = re.findall(r"(TASK \[[^\]]*\][^\n]*\n(?:(?!TASK \[).*\n)*?fatal: .*(?:\n {4}.*)*)", stdout)
    return "\n".join(blocks)[-6000:] or stdout[-3000:]


def mutating(sim, since=0):
    return [r for r in sim.requests()[since:] if r["method"] != "GET"]


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

    # Without the confirmation nothing happens.
    start = len(fleet.sim.requests())
    refused = fleet.playbook("ph3-02.yml")
    assert refused.returncode != 0 and "kbv3_confirm_destroy=true" in refused.stdout + refused.stderr
    assert mutating(fleet.sim, start) == []

    # The real run.
    real = fleet.playbook("ph3-02.yml", "-e", "kbv3_confirm_destroy=true")
    assert real.returncode == 0, failures(real.stdout)
    assert "created: 47 volumes, 2800 GB" in summary(real.stdout)
    assert "deleted: 40 legacy volumes, 1710 GB" in summary(real.stdout)
    volumes, _ = fleet.volumes()
    assert sorted(volumes) == sorted(v["volume_name"] for v in d["volumes_to_create"])
    for c in d["volumes_to_create"]:
        v = volumes[c["volume_name"]]
        assert (v.server.id, v.size, v.labels["role_v3"], v.labels["managed-by"]) == (c["server_id"], c["size_gb"], v.labels["role_v3"], "kbv3")
    deleted = {int(r["path"].rsplit("/", 1)[1]) for r in fleet.sim.requests() if r["method"] == "DELETE"}
    assert deleted == planned_deletes, "exactly the volumes the diff lists were deleted"

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
    again = fleet.playbook("ph3-02.yml", "-e", "kbv3_confirm_destroy=true")
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(r["changed"] == 0 for r in recap(again.stdout).values()), recap(again.stdout)
    assert mutating(fleet.sim, start) == []
    assert marker.read_text() == "keep me"
    fstab_again = fleet.fstab_lines()
    assert {f[1]: f[0] for f in fstab_again} == uuids, "no filesystem was recreated"


def start_killable(fleet):
    full_env = dict(os.environ, **fleet.env(), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                    PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    cmd = fleet.command("ph3-02.yml", "-e", "kbv3_confirm_destroy=true")
    return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def kill_when(fleet, proc, condition, what, limit=300):
    """SIGKILLs the whole playbook process group once `condition()` holds."""
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"the playbook ended before {what}"
        assert time.monotonic() < deadline, f"{what} did not happen within {limit}s"
        time.sleep(0.05)  # polling an observed condition, not a fixed wait
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@needs_root
def test_interrupted_runs_converge(fleet):
    assert fleet.playbook("ph3-01.yml").returncode == 0
    planned_deletes = {v["id"] for v in fleet.diff()["volumes_to_delete"]}
    requests = lambda: fleet.sim.requests()
    posts = lambda: [r for r in requests() if r["method"] == "POST" and r["route"] == "/volumes"]
    stages = [
        ("the first legacy delete", lambda: any(r["method"] == "DELETE" for r in requests())),
        ("the first create", lambda: len(posts()) >= 1),
        ("half of the creates", lambda: len(posts()) >= 24),
        ("the first mount", lambda: fleet.fstab_lines() != []),
    ]
    for i, (what, condition) in enumerate(stages):
        kill_when(fleet, start_killable(fleet), condition, what)
        if i == 1:
            # Refresh the diff mid-way: target volumes that exist now count as ok.
            assert fleet.playbook("ph3-01.yml").returncode == 0
            assert fleet.diff()["totals"]["ok"] >= 1
    final = fleet.playbook("ph3-02.yml", "-e", "kbv3_confirm_destroy=true")
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


@pytest.fixture
def api_fleet(tmp_path):
    f = Fleet(tmp_path, block_devices=False)
    yield f
    f.cleanup()


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
    result = fleet.playbook("ph3-02.yml", "-e", "kbv3_confirm_destroy=true")
    assert result.returncode != 0
    assert "stale (left alone): 1" in summary(result.stdout)
    # 39 host legacy volumes (vol-redis-01, 10 GB, is stale) plus the 10 GB orphan.
    assert "deleted: 40 legacy volumes, 1710 GB" in summary(result.stdout), summary(result.stdout)
    assert "the plan is stale for volume vol-redis-01" in result.stdout
    volumes, _ = fleet.volumes()
    assert volumes["vol-redis-01"].server.id == client.servers.get_by_name("redis-02").id
    assert len([n for n in volumes if n.startswith("vol-")]) == 1, "only the stale one is left"
    assert "vol-scratch" not in volumes and orphan.id not in [v.id for v in volumes.values()]
    assert len([n for n in volumes if n.startswith("kbv3-")]) == 47


def test_preflight_refuses_a_stale_or_missing_diff(api_fleet):
    fleet = api_fleet
    missing = fleet.playbook("ph3-02.yml", "--check")
    assert missing.returncode != 0 and "Run `ansible-playbook playbooks/ph3-01.yml`" in missing.stdout
    assert fleet.playbook("ph3-01.yml").returncode == 0
    tsv = fleet.fleet / "servers_v3.tsv"
    tsv.write_text("\n".join(line for line in tsv.read_text().splitlines() if not line.startswith("vault-01")) + "\n")
    stale = fleet.playbook("ph3-02.yml", "--check")
    assert stale.returncode != 0 and "The diff names hosts that are not in the inventory: vault-01" in stale.stdout
    assert mutating(fleet.sim) == []
