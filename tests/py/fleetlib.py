"""A PH3 fleet for the end-to-end tests: a simulator, a private fleet folder,
a mount root, an inventory overlay, and helpers to run and kill playbooks."""
import hashlib
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



def confirmation_code(diff_file):
    """A diff's confirmation code, computed here from the file's bytes (the contract)."""
    return hashlib.sha256(diff_file.read_bytes()).hexdigest()[:12]

class Fleet:
    """A simulator, a private fleet folder, a mount root and an inventory overlay."""

    def __init__(self, tmp_path, block_devices, hosts=None, action_ms=20, sim_args=()):
        """`hosts`: only these servers of the seed make the fleet; the others
        are servers outside the fleet. `sim_args`: more simulator options
        (faults)."""
        self.tmp = tmp_path
        self.fleet = tmp_path / "fleet"
        self.fleet.mkdir()
        for name in ("servers_v3.tsv", "volume_rules_v3.tsv"):
            (self.fleet / name).write_bytes((ROOT / "servers" / name).read_bytes())
        if hosts is not None:
            tsv = self.fleet / "servers_v3.tsv"
            lines = tsv.read_text().splitlines()
            tsv.write_text("\n".join(lines[:1] + [l for l in lines[1:] if l.split("\t")[0] in hosts]) + "\n")
        self.mnt = tmp_path / "mnt"
        # Ansible's scratch folders: a killed run leaves its own behind, here
        # rather than in ~/.ansible/tmp.
        self.ansible_tmp = tmp_path / "ansible-tmp"
        # One fstab per simulated host, as real servers have: several hosts
        # rewriting one shared file at once would lose each other's lines.
        self.fstabs = tmp_path / "fstab.d"
        self.fstabs.mkdir()
        extra = []
        if block_devices:
            extra = ["--block-devices", str(tmp_path / "bd"), "--block-device-servers", ",".join(REAL_HOSTS)]
        self.sim = Sim(tmp_path, *extra, *sim_args, action_ms=action_ms)
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
                "ANSIBLE_PYTHON_INTERPRETER": str(VENV_BIN / "python"),
                "ANSIBLE_LOCAL_TEMP": str(self.ansible_tmp / "local"), "ANSIBLE_REMOTE_TEMP": str(self.ansible_tmp / "remote")}

    def command(self, playbook, *args):
        return ["ansible-playbook", "-i", str(ROOT / "inventory" / "kbv3_inventory"), "-i", str(self.overlay),
                "-e", self.extra_vars, str(ROOT / "playbooks" / playbook), *args]

    def playbook(self, playbook, *args):
        return run(self.command(playbook, *args), env=self.env(), timeout=900)

    def diff(self):
        return json.loads((self.fleet / "volume_diff_v3.json").read_text())

    def code(self):
        return confirmation_code(self.fleet / "volume_diff_v3.json")

    def edit_diff(self, change):
        """Rewrites the diff by hand, as an operator with an editor would."""
        d = self.diff()
        change(d)
        (self.fleet / "volume_diff_v3.json").write_text(json.dumps(d, indent=2) + "\n")

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


@pytest.fixture
def slow_fleet(tmp_path):
    """The fleet with 500 ms actions: each stage of PH3-02's API stage lasts
    long enough for a test to kill the run inside it."""
    f = Fleet(tmp_path, block_devices=os.geteuid() == 0, action_ms=500)
    yield f
    f.cleanup()


def recap(stdout):
    """host -> {ok, changed, failed, ...} from the PLAY RECAP."""
    out = {}
    for host, fields in re.findall(r"^(\S+)\s+: (ok=.*)$", stdout, re.M):
        out[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return out


# The name of PH3-02's API stage (one kbv3_volumes task for the hosts of the play).
API_STAGE = "Delete the legacy volumes the diff lists, create, fix and attach the kbv3 volumes (one task for all hosts)"


def summary(stdout):
    block = stdout[stdout.rindex("TASK [Summarise the run]"):]
    return re.findall(r"- '?([a-z ()]+: [^'\n]+)'?", block)


def failures(stdout):
    """The failed tasks of a run, for assertion messages."""
    blocks = re.findall(r"(TASK \[[^\]]*\][^\n]*\n(?:(?!TASK \[).*\n)*?fatal: .*(?:\n {4}.*)*)", stdout)
    return "\n".join(blocks)[-6000:] or stdout[-3000:]


def mutating(sim, since=0):
    return [r for r in sim.requests()[since:] if r["method"] != "GET"]


def start_killable(command, env):
    """Starts `command` as PID 1 of its own PID namespace: Ansible's workers
    leave the playbook's process group and session, but not the namespace,
    and the kernel kills every process in it when its first one dies."""
    full_env = dict(os.environ, **env, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--", *command], cwd=ROOT, env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not _children(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, "unshare did not start the playbook"
        time.sleep(0.01)  # polling an observed condition
    proc.pid_namespace = os.readlink(f"/proc/{_children(proc.pid)[0]}/ns/pid")
    return proc


def _children(pid):
    try:
        return [int(c) for t in os.listdir(f"/proc/{pid}/task")
                for c in open(f"/proc/{pid}/task/{t}/children").read().split()]
    except FileNotFoundError:
        return []


def processes_in_namespace(ns):
    """The pids of every process in the PID namespace `ns` (a /proc/PID/ns/pid link)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    pids.append(int(entry))
            except OSError:
                pass  # the process ended while we looked
    return pids


def kill_tree(proc, limit=60):
    """SIGKILLs the playbook and every process it started; asserts none is left."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + limit
    while processes_in_namespace(proc.pid_namespace):
        assert time.monotonic() < deadline, f"left running: {processes_in_namespace(proc.pid_namespace)}"
        time.sleep(0.05)  # the kernel is reaping the namespace; polling an observed condition


def kill_when(proc, condition, what, limit=300):
    """Kills the whole playbook tree once `condition()` holds."""
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"the playbook ended before {what}"
        assert time.monotonic() < deadline, f"{what} did not happen within {limit}s"
        time.sleep(0.05)  # polling an observed condition, not a fixed wait
    kill_tree(proc)




@pytest.fixture
def api_fleet(tmp_path):
    """A fleet of all 47 servers, API only (no host side)."""
    f = Fleet(tmp_path, block_devices=False)
    yield f
    f.cleanup()
