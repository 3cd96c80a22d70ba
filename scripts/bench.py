"""Benchmarks (not tests): wall times and request counts, printed as a report.

1. A generated 10,000-server fleet (scripts/generate_fleet.py): `kbv3_inventory
   --list`, and the PH3-01 snapshot of its ~9,000 volumes from the simulator.
2. kbv3_volume next to hetzner.hcloud.volume: create with server, no-op, absent,
   each through ansible-playbook against a fresh simulator (--action-ms 200).
3. PH3-02's API stage (the steps on the servers off), 1 s actions, 3,600
   requests/hour: the confirmed run and a rerun, with the fleet module
   (playbooks/ph3-02.yml), with one kbv3_volume task per volume and host
   (scripts/bench/ph3-02-per-host.yml) and, for 47 servers, with
   hetzner.hcloud.volume (scripts/bench/ph3-02-official.yml); 47 servers and
   a generated 1,000-server fleet. Wall time, the API stage's own time (its
   tasks, timed by scripts/bench/callback_plugins/kbv3_timer.py), requests per
   host, 429s, ratios.
4. PH3-02 under API faults on a generated 200-server fleet (200 ms actions,
   3,600 requests/hour, fixed fault seeds): 20 % transient faults with and
   without stalled answers, and 10 % failed actions; plain reruns until the
   run succeeds. Wall time and requests per host of each run, reruns needed,
   and whether any server ever had a legacy volume and its new volume at once.
5. PH3-02 on a generated 1,000-server fleet: what its journal holds.
6. PH3-02 sliced as AWX slices a job (`slices`; `--servers N`, `--slices N`,
   `--orphans awx|none|every`): a generated 1,000-server fleet, one
   simulator (3,600 requests/hour, 1 s actions), PH3-01 once, then 4
   concurrent PH3-02 runs over disjoint striped `--limit @file`s with one
   code and one state directory, next to one run over all hosts measured
   the same way; each followed by a check of the API state against the plan
   and a no-op PH3-02 over all hosts. Wall time, requests per host, 429s,
   `locked` failures, and which run deleted the orphans (the pseudo-host
   kbv3-orphan-volumes).
"""
import argparse
import collections
import concurrent.futures
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


def run_timed(cmd, **kw):
    """Runs `cmd`; returns its wall time and the finished process, whatever its exit code."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t0, proc


def timed(cmd, **kw):
    took, proc = run_timed(cmd, **kw)
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


PATHS = {
    "kbv3_volumes": ROOT / "playbooks/ph3-02.yml",
    "kbv3_volume per host": ROOT / "scripts/bench/ph3-02-per-host.yml",
    "hetzner.hcloud.volume": ROOT / "scripts/bench/ph3-02-official.yml",
}

# The tasks of each path that talk to the API (and verify through it): the
# "API stage", timed apart from Ansible's start, the gate and the summary.
API_TASKS = {
    "kbv3_volumes": ("Delete the legacy volumes the diff lists, create, fix and attach the kbv3 volumes",
                     "Check this host's entry of the API stage"),
    "kbv3_volume per host": ("Delete the legacy volumes", "Create", "Verify"),
    "hetzner.hcloud.volume": ("Delete the legacy volumes", "Create", "Verify"),
}
TIMER = {"ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "scripts/bench/callback_plugins"),
         "ANSIBLE_CALLBACKS_ENABLED": "kbv3_timer"}


def fleet_files(tmp, servers):
    """A fresh fleet folder (and its simulator seed) of `servers` servers."""
    fleet = pathlib.Path(tmp) / f"fleet{servers}-{time.monotonic_ns()}"
    if servers == 47:
        fleet.mkdir()
        for f in ("servers_v3.tsv", "volume_rules_v3.tsv", "hcloud-sim-seed.json"):
            shutil.copy(ROOT / "servers" / f, fleet)
    else:
        timed([sys.executable, str(ROOT / "scripts/generate_fleet.py"), str(servers), str(fleet)])
    return fleet


def ph3_01(tmp, fleet, sim):
    """PH3-01 on `fleet` against `sim`, the steps on the servers off; returns
    the environment, the ansible-playbook command and the diff's code."""
    e = env(sim, KBV3_FLEET_DIR=str(fleet))
    hosts = [l.split("\t")[0] for l in (fleet / "servers_v3.tsv").read_text().splitlines()[1:]]
    overlay = pathlib.Path(tmp) / f"overlay-{time.monotonic_ns()}.json"
    overlay.write_text(json.dumps({"all": {"hosts": {h: {"ansible_connection": "local", "kbv3_host_side": False} for h in hosts}}}))
    base = [str(VENV / "ansible-playbook"), "-i", str(ROOT / "inventory/kbv3_inventory"), "-i", str(overlay)]
    timed(base + ["playbooks/ph3-01.yml"], env=e, cwd=ROOT)
    return e, base, hashlib.sha256((fleet / "volume_diff_v3.json").read_bytes()).hexdigest()[:12]


def bench_ph3(tmp, servers, path, rate_limit=3600):
    """PH3-02 (API stage; the steps on the servers are off) on a fresh
    simulator with 1 s actions: the confirmed run and a rerun. Returns one
    table row per run."""
    fleet = fleet_files(tmp, servers)
    sim = Sim(tmp, "--action-ms", "1000", "--rate-limit", str(rate_limit), seed=fleet / "hcloud-sim-seed.json")
    e, base, code = ph3_01(tmp, fleet, sim)
    rows = []
    timer = pathlib.Path(tmp) / f"timer-{time.monotonic_ns()}.json"
    for run in ("confirmed", "rerun"):
        before = len(sim.requests())
        took, _ = timed(base + [str(PATHS[path]), "-e", f"kbv3_confirm_destroy={code}"],
                        env=dict(e, KBV3_TIMER_FILE=str(timer), **TIMER), cwd=ROOT)
        api = sum(s for name, s in json.loads(timer.read_text()) if name.startswith(API_TASKS[path]))
        log = sim.requests()[before:]
        rows.append({"servers": servers, "path": path, "run": run, "seconds": took, "api_seconds": api, "requests": len(log),
                     "per_host": len(log) / servers, "by_method": dict(collections.Counter(r["method"] for r in log)),
                     "429": sum(r["status"] == 429 for r in log), "rate_limit": rate_limit})
    sim.stop()
    return rows


def print_table(rows):
    print(f"{'servers':>7}  {'path':22} {'run':9} {'wall s':>7} {'API s':>6} {'requests':>8} {'req/host':>8} {'429s':>5}  by method")
    for r in rows:
        note = "" if r["rate_limit"] == 3600 else f"  (rate limit lifted to {r['rate_limit']:,}/h)"
        print(f"{r['servers']:>7}  {r['path']:22} {r['run']:9} {r['seconds']:7.1f} {r['api_seconds']:6.1f} {r['requests']:8} "
              f"{r['per_host']:8.2f} {r['429']:5}  {r['by_method']}{note}")
    for servers in sorted({r["servers"] for r in rows}):
        for run in ("confirmed", "rerun"):
            mine = {r["path"]: r for r in rows if r["servers"] == servers and r["run"] == run}
            fleet = mine["kbv3_volumes"]
            for other in ("kbv3_volume per host", "hetzner.hcloud.volume"):
                if other in mine:
                    o = mine[other]
                    print(f"{servers} servers, {run}: kbv3_volumes is {o['seconds'] / fleet['seconds']:.1f}x faster "
                          f"end to end, {o['api_seconds'] / fleet['api_seconds']:.1f}x faster in the API stage, and sends {o['requests'] / max(fleet['requests'], 1):.1f}x fewer requests than {other}")
    for r in rows:
        if r["rate_limit"] != 3600 and r["run"] == "confirmed":
            print(f"{r['servers']} servers, {r['path']}: {r['requests']:,} requests; at 3,600/hour (bucket of 3,600, "
                  f"one per second) the budget alone needs {max(r['requests'] - 3600, 0) / 60:.0f} minutes past the first 3,600")


def two_on_one_server(sim, legacy):
    """Servers that have a legacy volume of the diff and their new volume at once."""
    from hcloud import Client
    c = Client(token=TOKEN, api_endpoint=sim.endpoint)
    on = collections.defaultdict(list)
    for v in c.volumes.get_all():
        if v.server is not None:
            on[v.server.id].append(v)
    names = {s.id: s.name for s in c.servers.get_all()}
    return sorted(names[s] for s, vs in on.items()
                  if any(v.id in legacy for v in vs) and any(v.name == f"kbv3-{names[s]}-data" for v in vs))


def bench_faults(tmp, servers=200):
    """PH3-02 under faults, plain reruns until it succeeds (at most 4 runs)."""
    scenarios = [("20% transient", "429=0.05,409=0.05,502=0.05,504=0.05"),
                 ("20% transient + 1% stalls", "429=0.05,409=0.05,502=0.05,504=0.04,stall=0.01"),
                 ("10% failed actions", "action_error=0.1")]
    print(f"{'servers':>7}  {'faults':27} {'seed':>4}  runs (rc, wall s, req/host)                      reruns  two on one server")
    for name, faults in scenarios:
        for seed in (1, 2):
            fleet = fleet_files(tmp, servers)
            sim = Sim(tmp, "--action-ms", "200", "--faults", faults, "--fault-seed", str(seed),
                      seed=fleet / "hcloud-sim-seed.json")
            e, base, code = ph3_01(tmp, fleet, sim)
            diff = json.loads((fleet / "volume_diff_v3.json").read_text())
            legacy = {v["id"] for v in diff["volumes_to_delete"]}
            runs, both = [], set()
            for _ in range(4):
                before = len(sim.requests())
                t0 = time.perf_counter()
                proc = subprocess.run(base + ["playbooks/ph3-02.yml", "-e", f"kbv3_confirm_destroy={code}"], env=e, cwd=ROOT,
                                      capture_output=True, text=True)
                took = time.perf_counter() - t0
                runs.append((proc.returncode, took, (len(sim.requests()) - before) / servers))
                both |= set(two_on_one_server(sim, legacy))
                if proc.returncode == 0:
                    break
            sim.stop()
            shown = ", ".join(f"({rc}, {w:.0f}, {r:.2f})" for rc, w, r in runs)
            print(f"{servers:>7}  {name:27} {seed:>4}  {shown:48} {len(runs) - 1:>6}  {sorted(both) or 'never'}")


def bench_journal(tmp, servers=1000):
    """What the journal of a confirmed 1,000-server run holds."""
    fleet = fleet_files(tmp, servers)
    sim = Sim(tmp, "--action-ms", "1000", seed=fleet / "hcloud-sim-seed.json")
    e, base, code = ph3_01(tmp, fleet, sim)
    timed(base + ["playbooks/ph3-02.yml", "-e", f"kbv3_confirm_destroy={code}"], env=e, cwd=ROOT)
    journal = fleet / "ph3_02_journal.jsonl"
    lines = journal.read_text().splitlines()
    events = collections.Counter(json.loads(l)["event"] for l in lines)
    t0 = time.perf_counter()
    timed([str(ROOT / "inventory/kbv3_inventory"), "report", "--dir", str(fleet)])
    print(f"journal, {servers} servers, one confirmed run: {len(lines)} lines ({journal.stat().st_size / 1e6:.2f} MB), "
          f"{dict(events)}; rebuilding the report from it takes {time.perf_counter() - t0:.2f} s")
    sim.stop()


ORPHAN_HOST = "kbv3-orphan-volumes"
API_TASK = API_TASKS["kbv3_volumes"][0]


def inventory_hosts(e, base):
    """Every host of the inventory PH3-02 runs on, sorted by name: the list
    AWX slices (the orphans' pseudo-host is a host like the others)."""
    sources = base[1:]  # the -i options of the ansible-playbook command
    _, proc = timed([str(VENV / "ansible-inventory"), *sources, "--list"], env=e, cwd=ROOT)
    inv = json.loads(proc.stdout)
    hosts = set(inv.get("_meta", {}).get("hostvars", {}))
    for name, group in inv.items():
        if name != "_meta":
            hosts.update(group.get("hosts", []))
    return sorted(hosts)


def ph3_02_json(tmp, e, base, code, *extra):
    """PH3-02 with the json stdout callback and the task timer: wall time,
    exit code, the kbv3_volumes task's result and the API stage's seconds."""
    timer = pathlib.Path(tmp) / f"timer-{time.monotonic_ns()}.json"
    took, proc = run_timed(base + ["playbooks/ph3-02.yml", "-e", f"kbv3_confirm_destroy={code}", *extra],
                           env=dict(e, ANSIBLE_STDOUT_CALLBACK="json", KBV3_TIMER_FILE=str(timer), **TIMER), cwd=ROOT)
    api, seconds = {}, None
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {}
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            if task["task"]["name"].startswith(API_TASK):
                api = next((r for r in task["hosts"].values() if "api_requests" in r or "failure" in r), api)
    if timer.exists():
        seconds = sum(s for name, s in json.loads(timer.read_text()) if name.startswith(API_TASKS["kbv3_volumes"]))
    return {"rc": proc.returncode, "seconds": took, "api_seconds": seconds, "api": api,
            "stdout": proc.stdout, "stderr": proc.stderr}


def failure_codes(api):
    """The kbv3_volumes task's failure code and its hosts' ones, with how often."""
    codes = collections.Counter(h["failure"]["code"] for h in api.get("hosts", {}).values()
                                if isinstance(h.get("failure"), dict) and "code" in h["failure"])
    if isinstance(api.get("failure"), dict):
        codes[f"task: {api['failure'].get('code')}"] += 1
    return dict(codes)


def final_state(sim, fleet):
    """What the API shows after the runs, against the plan and the diff:
    servers without their kbv3 volume attached (at its planned size), and
    the legacy volumes of the diff that still exist (attached, unattached)."""
    from hcloud import Client
    c = Client(token=TOKEN, api_endpoint=sim.endpoint)
    plan = {v["hostname"]: v for v in json.loads((fleet / "volume_plan_v3.json").read_text())["volumes"]}
    diff = json.loads((fleet / "volume_diff_v3.json").read_text())
    names = {s.id: s.name for s in c.servers.get_all()}
    volumes = c.volumes.get_all()
    by_name = {v.name: v for v in volumes}
    missing = []
    for host, want in sorted(plan.items()):
        v = by_name.get(want["volume_name"])
        if v is None or v.server is None or names.get(v.server.id) != host or v.size != want["size_gb"]:
            missing.append(host)
    legacy = {v["id"] for v in diff["volumes_to_delete"]}
    left = [v for v in volumes if v.id in legacy]
    return {"missing": missing, "legacy_attached": sum(v.server is not None for v in left),
            "legacy_unattached": sum(v.server is None for v in left)}


def journal_deletions(fleet):
    """Per run id of the journal: deletions done, and how many of them were orphans."""
    out, intents = collections.defaultdict(collections.Counter), {}
    path = fleet / "ph3_02_journal.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        j = json.loads(line)
        if j["event"] == "intent" and j["op"] == "delete":
            intents[(j["run"], j["seq"])] = j["host"]
        elif j["event"] == "outcome" and (j["run"], j["seq"]) in intents:
            whose = "orphans" if intents[(j["run"], j["seq"])] == ORPHAN_HOST else "hosts'"
            out[j["run"]][f"{whose} {j['result']}"] += 1
    return out


def sliced_runs(tmp, servers, n, orphans):
    """A fresh fleet and simulator (3,600 requests/hour, 1 s actions),
    PH3-01, then PH3-02 as `n` concurrent runs over striped `--limit @file`s
    (no --limit when n is 1), one code, one state directory; then the final
    API state, and one more PH3-02 over all hosts (a no-op once the runs
    converged). Returns what was measured."""
    fleet = fleet_files(tmp, servers)
    sim = Sim(tmp, "--action-ms", "1000", "--rate-limit", "3600", seed=fleet / "hcloud-sim-seed.json")
    try:
        e, base, code = ph3_01(tmp, fleet, sim)
        hosts = inventory_hosts(e, base)
        striped = hosts if orphans == "awx" else [h for h in hosts if h != ORPHAN_HOST]
        slices = [striped[k::n] for k in range(n)]
        limits = []
        for k, mine in enumerate(slices, 1):
            f = pathlib.Path(tmp) / f"slice{k}-of-{n}-{time.monotonic_ns()}.limit"
            f.write_text("\n".join(mine + (["kbv3_orphans"] if orphans == "every" else [])) + "\n")
            limits.append(["--limit", f"@{f}"] if n > 1 else [])
        before = len(sim.requests())
        load = os.getloadavg()
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            runs = list(pool.map(lambda limit: ph3_02_json(tmp, e, base, code, *limit), limits))
        overall = time.perf_counter() - t0
        load = (load, os.getloadavg())
        log = sim.requests()[before:]
        state = final_state(sim, fleet)
        noop_before = len(sim.requests())
        noop = ph3_02_json(tmp, e, base, code)
        noop_log = sim.requests()[noop_before:]
        return {"n": n, "slices": slices if n > 1 else [hosts], "runs": runs, "overall": overall, "load": load,
                "log": log, "state": state, "noop": noop, "noop_requests": len(noop_log),
                "deletions": journal_deletions(fleet)}
    finally:
        sim.stop()


def bench_slices(tmp, servers=1000, n=4, orphans="awx"):
    """AWX-style job slicing of PH3-02 (README 'Running from AWX / AAP'): AWX
    stripes the inventory's hosts sorted by name, slice k of n taking hosts
    k, k+n, k+2n, ...; here n concurrent ansible-playbook runs over those
    hosts as disjoint `--limit @file`s, next to one run over all hosts, each
    on a fresh simulator. `orphans` says where the pseudo-host
    kbv3-orphan-volumes goes: "awx" striped with the others, as AWX does;
    "none" the slices take the fleet servers only (as with a template limit
    of `kbv3`); "every" each slice's limit also names kbv3_orphans.
    Returns whether the slices converged."""
    one, many = sliced_runs(tmp, servers, 1, orphans), sliced_runs(tmp, servers, n, orphans)
    print(f"PH3-02, {servers:,} servers, one simulator each at 3,600 requests/hour with 1 s actions: one run over "
          f"all hosts, then {n} concurrent slices over disjoint --limit @file (the inventory's hosts sorted by name, "
          f"striped), one code and one state dir; orphans: {orphans}")
    print(f"{'run':12} {'servers':>7} {'rc':>3} {'wall s':>7} {'API s':>6} {'requests':>8} {'req/host':>8} "
          f"{'429s':>5} {'retries':>7} {'deleted':>7} {'created':>7}  failure codes")

    def row(label, mine, run, log=None, orphans_named=False):
        api = run["api"]
        reqs = sum(api.get("api_requests", {}).get("requests", {}).values())
        nserv = sum(h != ORPHAN_HOST for h in mine)
        tot = api.get("totals", {})
        api_s = f"{run['api_seconds']:6.1f}" if run["api_seconds"] is not None else f"{'?':>6}"
        too_many = f"{sum(r['status'] == 429 for r in log):5}" if log is not None else f"{'-':>5}"
        print(f"{label:12} {nserv:>7} {run['rc']:>3} {run['seconds']:7.1f} {api_s} {reqs:8} {reqs / max(nserv, 1):8.2f} "
              f"{too_many} {api.get('api_requests', {}).get('retries', 0):7} {tot.get('deleted', 0):7} "
              f"{tot.get('created', 0):7}  {failure_codes(api) or 'none'}"
              f"{'  (has ' + ORPHAN_HOST + ')' if ORPHAN_HOST in mine or orphans_named else ''}")

    row("single", one["slices"][0], one["runs"][0], one["log"])
    for k, (mine, run) in enumerate(zip(many["slices"], many["runs"]), 1):
        row(f"slice {k}/{n}", mine, run, orphans_named=orphans == "every")
    runs, log = many["runs"], many["log"]
    reported = sum(sum(r["api"].get("api_requests", {}).get("requests", {}).values()) for r in runs)
    print(f"{'all slices':12} {servers:>7} {max(r['rc'] for r in runs):>3} {many['overall']:7.1f} {'':>6} {len(log):8} "
          f"{len(log) / servers:8.2f} {sum(r['status'] == 429 for r in log):5} "
          f"{sum(r['api'].get('api_requests', {}).get('retries', 0) for r in runs):7} "
          f"{sum(r['api'].get('totals', {}).get('deleted', 0) for r in runs):7} "
          f"{sum(r['api'].get('totals', {}).get('created', 0) for r in runs):7}  "
          f"(as the modules counted them: {reported} requests)")
    print("requests per host: the run's requests over its fleet servers (the orphans' pseudo-host not counted); "
          "429s: the simulator's count (it cannot tell the slices apart); retries: each module's own (429s waited "
          "out, and any retried conflict or lock)")
    converged = {}
    for label, m in (("single", one), (f"{n} slices", many)):
        st, noop = m["state"], m["noop"]
        ntot = noop["api"].get("totals", {})
        changes = {k: ntot.get(k, 0) for k in ("created", "fixed", "deleted") if ntot.get(k, 0)}
        run_ids = {r["api"].get("run_id"): (f"slice {k}" if m["n"] > 1 else "the run") for k, r in enumerate(m["runs"], 1)}
        run_ids[noop["api"].get("run_id")] = "no-op run"
        converged[label] = (all(r["rc"] == 0 for r in m["runs"]) and not st["missing"] and not st["legacy_attached"]
                            and not st["legacy_unattached"] and noop["rc"] == 0 and not changes)
        locked = [k for k, r in enumerate(m["runs"], 1) if any("locked" in c for c in failure_codes(r["api"]))]
        (l0, l1) = m["load"]
        print(f"{label}: load average {l0[0]:.2f} {l0[1]:.2f} {l0[2]:.2f} at the start, {l1[0]:.2f} {l1[1]:.2f} {l1[2]:.2f} "
              f"at the end (2 cores, shared); statuses {dict(collections.Counter(r['status'] for r in m['log']))}; "
              f"runs with failure.code locked: {locked or 'none'}")
        print(f"  afterwards: {len(st['missing'])} servers without their kbv3 volume"
              f"{' ' + str(st['missing'][:5]) if st['missing'] else ''}, {st['legacy_attached']} legacy volumes still "
              f"attached, {st['legacy_unattached']} unattached legacy volumes (orphans) left")
        print(f"  then one PH3-02 over all hosts (a no-op once converged): rc {noop['rc']}, {noop['seconds']:.1f} s, {m['noop_requests']} requests, "
              f"changes {changes or 'none'}, failure codes {failure_codes(noop['api']) or 'none'}")
        print("  deletions in the journal, by run: " + "; ".join(
            f"{run_ids.get(rid, rid)}: {dict(c)}" for rid, c in m["deletions"].items()))
        for k, r in enumerate(m["runs"], 1):
            if r["rc"] != 0:
                why = r["api"].get("failure") or r["api"].get("msg") or (r["stderr"] or r["stdout"])[-1500:]
                print(f"  run {k} failed (rc {r['rc']}): {why}")
        print(f"  converged (every run rc 0, the API state as planned, the no-op run changes nothing): "
              f"{'yes' if converged[label] else 'NO'}")
    return converged[f"{n} slices"]


def bench_fleet_sizes():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in PATHS:
            rows += bench_ph3(tmp, 47, path)
        rows += bench_ph3(tmp, 1000, "kbv3_volumes")
        # 14 requests per host would be throttled for hours at 3,600/hour: measured with the limit lifted.
        rows += bench_ph3(tmp, 1000, "kbv3_volume per host", rate_limit=1_000_000)
    print_table(rows)
    return rows


PARTS = ("inventory", "module", "faults", "journal", "fleet", "slices")


def main():
    # e.g. `make bench ARGS=faults`, `make bench ARGS="slices --servers 100"`; all parts by default
    p = argparse.ArgumentParser(description="kbv3 benchmarks (not tests)")
    p.add_argument("parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)}; all by default")
    p.add_argument("--servers", type=int, default=1000, help="slices: servers of the generated fleet (default 1,000)")
    p.add_argument("--slices", type=int, default=4, help="slices: concurrent PH3-02 runs (default 4)")
    p.add_argument("--orphans", choices=("awx", "none", "every"), default="awx",
                   help="slices: the orphans' pseudo-host striped with the other hosts as AWX does (awx), "
                        "in no slice (none), or added to every slice's limit (every)")
    a = p.parse_args()
    only = set(a.parts)
    if only - set(PARTS):
        p.error(f"unknown part {', '.join(sorted(only - set(PARTS)))}; parts: {', '.join(PARTS)}")
    if a.servers < 1 or not 1 <= a.slices <= a.servers:
        p.error("--servers must be at least 1, --slices between 1 and --servers")
    with tempfile.TemporaryDirectory() as tmp:
        if not only or "inventory" in only:
            bench_inventory(tmp)
        if not only or "module" in only:
            bench_module(tmp)
        if not only or "faults" in only:
            bench_faults(tmp)
        if not only or "journal" in only:
            bench_journal(tmp)
    if not only or "fleet" in only:
        bench_fleet_sizes()
    if not only or "slices" in only:
        with tempfile.TemporaryDirectory() as tmp:
            if not bench_slices(tmp, a.servers, a.slices, a.orphans) and a.orphans == "awx":
                sys.exit("the sliced PH3-02 runs did not converge")


if __name__ == "__main__":
    main()
