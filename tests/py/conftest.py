"""Shared fixtures: a fresh hcloud-sim per test, on a free loopback port."""
import itertools
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release"
SEED = ROOT / "servers" / "hcloud-sim-seed.json"
TOKEN = "py-test-token-7d2e"
_counter = itertools.count()


class Sim:
    """A running simulator: its endpoint and its request log."""

    def __init__(self, tmp, *extra, seed=SEED, action_ms=20):
        n = next(_counter)
        self.request_log = tmp / f"requests-{n}.jsonl"
        self.holds = tmp / f"holds-{n}"
        self.holds.mkdir()
        cmd = [str(BIN / "hcloud-sim"), "--listen", "127.0.0.1:0", "--token", TOKEN,
               "--seed", str(seed), "--action-ms", str(action_ms),
               "--request-log", str(self.request_log), "--hold-dir", str(self.holds), *extra]
        responses = os.environ.get("KBV3_RESPONSE_LOG_DIR")
        if responses:
            cmd += ["--response-log", os.path.join(responses, f"py-{os.getpid()}-{next(_counter)}.jsonl")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.endpoint = self.proc.stdout.readline().strip()
        assert self.endpoint.startswith("http://127.0.0.1:"), self.endpoint
        self.token = TOKEN

    def requests(self):
        if not self.request_log.exists():
            return []
        return [json.loads(line) for line in self.request_log.read_text().splitlines()]

    def mutating(self):
        return [r for r in self.requests() if r["method"] != "GET"]

    def _gate(self, method, path):
        return self.holds / f"{method} {path.replace('/', '_')}"

    def hold(self, method, path):
        """The simulator will hold the next `method path` request (e.g. `POST
        /v1/volumes/7/actions/detach`) before processing it, until `release`;
        the test's own requests to that path meanwhile go through."""
        self._gate(method, path).touch()

    def wait_held(self, method, path, proc=None, limit=120):
        """Waits until the simulator holds that request; `proc` must not end first."""
        held = self._gate(method, path).with_name(self._gate(method, path).name + ".held")
        deadline = time.monotonic() + limit
        while not held.exists():
            assert proc is None or proc.poll() is None, f"the run ended before it sent {method} {path}"
            assert time.monotonic() < deadline, f"{method} {path} was not sent within {limit}s"
            time.sleep(0.02)  # polling an observed condition

    def release(self, method, path):
        """Lets a held request go on (and drops a hold no request took)."""
        gate = self._gate(method, path)
        gate.unlink(missing_ok=True)
        gate.with_name(gate.name + ".held").unlink(missing_ok=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.fixture
def start_sim(tmp_path):
    sims = []

    def start(*extra, **kw):
        sim = Sim(tmp_path, *extra, **kw)
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.stop()


@pytest.fixture
def sim(start_sim):
    return start_sim()


VENV_BIN = ROOT / ".venv" / "bin"
INVENTORY = ROOT / "inventory" / "kbv3_inventory"


def run(cmd, env=None, cwd=ROOT, check=False, timeout=600):
    """Runs a command from the repository root with the venv first on PATH."""
    full_env = dict(os.environ)
    full_env["PATH"] = f"{VENV_BIN}:{full_env['PATH']}"
    full_env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}")
    return proc


def run_module(args, tmp_path, env=None, prefix=(), module="kbv3_volume"):
    """Runs a module binary as Ansible does: an args file in, one JSON
    object on stdout. `prefix` runs it under another command (unshare …)."""
    path = tmp_path / f"args-{next(_counter)}.json"
    path.write_text(json.dumps(args))
    return subprocess.run([*prefix, str(ROOT / "library" / module), str(path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture
def fleet_dir(tmp_path):
    """A private copy of the fleet files, so tests never touch servers/*.json."""
    d = tmp_path / "fleet"
    d.mkdir()
    for name in ("servers_v3.tsv", "volume_rules_v3.tsv"):
        (d / name).write_bytes((ROOT / "servers" / name).read_bytes())
    return d


class PlayResult:
    """What one ansible-playbook run did: exit code, output, per-task results."""

    def __init__(self, proc, structured):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.tasks = []
        if structured:
            doc = json.loads(proc.stdout)
            for play in doc["plays"]:
                for task in play["tasks"]:
                    for host, result in task["hosts"].items():
                        self.tasks.append(result)
            self.stats = doc["stats"]

    def __getitem__(self, i):
        return self.tasks[i]


def play(sim, tasks, tmp_path, check=False, diff=False, verbose=None, structured=True, env=None, hosts="localhost"):
    """Runs the tasks on localhost (connection local) against the simulator."""
    import yaml

    book = tmp_path / f"play-{next(_counter)}.yml"
    book.write_text(yaml.safe_dump([{"name": "test", "hosts": hosts, "gather_facts": False, "tasks": tasks}], sort_keys=False))
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(book)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbose:
        cmd.append(verbose)
    full_env = {
        "HCLOUD_TOKEN": sim.token, "HCLOUD_ENDPOINT": sim.endpoint,
        "KBV3_POLL_INTERVAL_MS": "20", "KBV3_RETRY_BASE_MS": "20",
        "ANSIBLE_PYTHON_INTERPRETER": str(VENV_BIN / "python"),
    }
    if structured:
        full_env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    full_env.update(env or {})
    return PlayResult(run(cmd, env=full_env), structured)
