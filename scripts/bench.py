"""Benchmarks (not tests): wall times and request counts, printed as a report.

1. A generated 10,000-server fleet (scripts/generate_fleet.py): `kbv3_inventory
   --list`, and the PH3-01 snapshot of its ~9,000 volumes from the simulator.
2. kbv3_volume next to hetzner.hcloud.volume: create with server, no-op, absent,
   each through ansible-playbook against a fresh simulator (--action-ms 200).
3. PH3-02 on the 47-server seed, API path only: dry run, confirmed run, rerun.
"""
import collections
import hashlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release"
VENV = ROOT / ".venv" / "bin"
TOKEN = "bench-token"


class Sim:
    def __init__(self, tmp, *extra, seed=ROOT / "servers/hcloud-sim-seed.json"):
        self.log = pathlib.Path(tmp) / f"requests-{time.monotonic_ns()}.jsonl"
        self.proc = subprocess.Popen([str(BIN / "hcloud-sim"), "--token", TOKEN, "--seed", str(seed),
                                      "--request-log", str(self.log), *extra], stdout=subprocess.PIPE, text=True)
        self.endpoint = self.proc.stdout.readline().strip()

    def requests(self):
        return [json.loads(l) for l in self.log.read_text().splitlines()] if self.log.exists() else []

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def env(sim, **extra):
    e = dict(os.environ, HCLOUD_TOKEN=TOKEN, HCLOUD_ENDPOINT=sim.endpoint, PATH=f"{VENV}:{os.environ['PATH']}",
             ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_PYTHON_INTERPRETER=str(VENV / "python"))
    e.update(extra)
    return e


def timed(cmd, **kw):
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed: {cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return took, proc


def bench_inventory(tmp):
    fleet = pathlib.Path(tmp) / "fleet10k"
    timed([sys.executable, str(ROOT / "scripts/generate_fleet.py"), "10000", str(fleet)])
    e = dict(os.environ, KBV3_FLEET_DIR=str(fleet))
    runs = [timed([str(ROOT / "inventory/kbv3_inventory"), "--list"], env=e)[0] for _ in range(10)]
    size = len(timed([str(ROOT / "inventory/kbv3_inventory"), "--list"], env=e)[1].stdout)
    ai, _ = timed([str(VENV / "ansible-inventory"), "--list"], env=dict(e, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")), cwd=ROOT)
    print(f"inventory, 10,000 servers: kbv3_inventory --list median {statistics.median(runs) * 1000:.0f} ms "
          f"(min {min(runs) * 1000:.0f}, max {max(runs) * 1000:.0f}; {size / 1e6:.1f} MB of JSON); "
          f"ansible-inventory --list on it {ai:.1f} s")
    sim = Sim(tmp, seed=fleet / "hcloud-sim-seed.json")
    took, _ = timed([str(ROOT / "inventory/kbv3_inventory"), "existing"], env=env(sim, KBV3_FLEET_DIR=str(fleet)))
    print(f"PH3-01 snapshot, 10,000 servers: {took:.2f} s, {len(sim.requests())} GET (paged lists of 50)")
    sim.stop()


def play(sim, tmp, task):
    book = pathlib.Path(tmp) / f"b{time.monotonic_ns()}.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    before = len(sim.requests())
    took, _ = timed([str(VENV / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)], env=env(sim), cwd=ROOT)
    counts = collections.Counter(r["method"] for r in sim.requests()[before:])
    return took, dict(counts)


def bench_module(tmp):
    ops = [("create with server", {"name": "kbv3-siem-01-data", "size": 50, "server": "siem-01"}),
           ("no-op", {"name": "kbv3-siem-01-data", "size": 50, "server": "siem-01"}),
           ("absent (attached)", {"name": "vol-vault-01", "state": "absent"})]
    for module in ("kbv3_volume", "hetzner.hcloud.volume"):
        sim = Sim(tmp, "--action-ms", "200")
        extra = {"api_token": TOKEN, "api_endpoint": sim.endpoint} if module.startswith("hetzner") else {}
        for name, args in ops:
            took, counts = play(sim, tmp, {module: {**args, **extra}})
            print(f"module {module:22} {name:20} {took:5.2f} s  requests {counts}")
        sim.stop()


def bench_ph3(tmp):
    sim = Sim(tmp, "--action-ms", "200")
    fleet = pathlib.Path(tmp) / "fleet47"
    fleet.mkdir()
    for f in ("servers_v3.tsv", "volume_rules_v3.tsv"):
        shutil.copy(ROOT / "servers" / f, fleet)
    e = env(sim, KBV3_FLEET_DIR=str(fleet))
    hosts = [l.split("\t")[0] for l in (fleet / "servers_v3.tsv").read_text().splitlines()[1:]]
    overlay = pathlib.Path(tmp) / "overlay.json"
    overlay.write_text(json.dumps({"all": {"hosts": {h: {"ansible_connection": "local", "kbv3_host_side": False} for h in hosts}}}))
    base = [str(VENV / "ansible-playbook"), "-i", str(ROOT / "inventory/kbv3_inventory"), "-i", str(overlay)]
    confirm = lambda: "kbv3_confirm_destroy=" + hashlib.sha256((fleet / "volume_diff_v3.json").read_bytes()).hexdigest()[:12]
    for name, args in [("PH3-01", lambda: ["playbooks/ph3-01.yml"]),
                       ("PH3-02 dry run", lambda: ["playbooks/ph3-02.yml", "--check", "--diff"]),
                       ("PH3-02 confirmed", lambda: ["playbooks/ph3-02.yml", "-e", confirm()]),
                       ("PH3-02 rerun", lambda: ["playbooks/ph3-02.yml", "-e", confirm()])]:
        args = args()
        before = len(sim.requests())
        took, _ = timed(base + args, env=e, cwd=ROOT)
        counts = collections.Counter(r["method"] for r in sim.requests()[before:])
        print(f"{name:18} 47 servers, API path only: {took:5.1f} s  requests {dict(counts)}")
    sim.stop()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        bench_inventory(tmp)
        bench_module(tmp)
        bench_ph3(tmp)


if __name__ == "__main__":
    main()
