"""PH3-02 on the whole fleet under API faults (fixed fault seeds), through the
real playbook against hcloud-sim: runs fail honestly and converge with plain
reruns, no server ever has a legacy volume and its new volume attached at
once, nothing outside the diff is deleted, and every summary counts what the
simulator really did."""
import re

import pytest

from fleetlib import Fleet, failures, recap, summary


def counted(lines, what):
    """The number in a summary line such as 'deleted: 12 legacy volumes, 340 GB'."""
    line = next(l for l in lines if l.startswith(what + ":"))
    return int(re.match(r"[a-z ]+: (\d+)", line).group(1))


def failed_hosts(stdout):
    """The hosts whose volume tasks failed (and were rescued to be counted). The
    final fail task runs once, on the first host, so `failed` says nothing per host."""
    return {h for h, r in recap(stdout).items() if r.get("rescued")}


@pytest.mark.parametrize("seed", [3, 11])
def test_action_errors_never_put_two_volumes_on_one_server(tmp_path, seed):
    fleet = Fleet(tmp_path, block_devices=False, sim_args=["--faults", "action_error=0.1", "--fault-seed", str(seed)])
    try:
        assert fleet.playbook("ph3-01.yml").returncode == 0
        d = fleet.diff()
        planned = {v["id"] for v in d["volumes_to_delete"]}
        legacy = {v["id"]: v["server_name"] for v in d["volumes_to_delete"]}
        hosts = {c["hostname"] for c in d["volumes_to_create"]}
        failed_runs = 0
        for attempt in range(4):
            start = len(fleet.sim.requests())
            targets_before = {n for n in fleet.volumes()[0] if n.startswith("kbv3-")}
            result = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
            log = fleet.sim.requests()[start:]
            volumes, _ = fleet.volumes()
            # Never a legacy volume and its host's new volume on one server.
            by_server = {}
            for v in volumes.values():
                if v.server is not None:
                    by_server.setdefault(v.server.name, []).append(v)
            for server, attached in by_server.items():
                old = [v.name for v in attached if v.id in legacy]
                new = [v.name for v in attached if v.name == f"kbv3-{server}-data"]
                assert not (old and new), f"run {attempt + 1}: {server} has {old} and {new}"
            # Nothing outside the diff, and the summary counts what the simulator did.
            deleted = {int(r["path"].rsplit("/", 1)[1]) for r in log if r["method"] == "DELETE" and r["status"] == 204}
            assert deleted <= planned
            lines = summary(result.stdout)
            assert counted(lines, "deleted") == len(deleted), lines
            # A create whose action failed left no volume (as on Hetzner): it is not counted.
            targets_now = {n for n in volumes if n.startswith("kbv3-")}
            assert counted(lines, "created") == len(targets_now - targets_before), lines
            # A failing run names exactly the hosts it left unconverged.
            unconverged = {h for h in hosts if not (f"kbv3-{h}-data" in volumes and volumes[f"kbv3-{h}-data"].server
                                                   and volumes[f"kbv3-{h}-data"].server.name == h)}
            unconverged |= {legacy[v.id] for v in volumes.values() if v.id in legacy and legacy[v.id]}
            if any(v.id in legacy and legacy[v.id] is None for v in volumes.values()):
                unconverged.add("kbv3-orphan-volumes")
            if result.returncode == 0:
                assert unconverged == set(), unconverged
                break
            failed_runs += 1
            assert counted(lines, "failed hosts") == len(unconverged), lines
            assert failed_hosts(result.stdout) == unconverged, (lines, failures(result.stdout))
        else:
            pytest.fail("not converged after three plain reruns")
        assert failed_runs >= 1, "the faults happened: at least one run failed"
        volumes, _ = fleet.volumes()
        assert {n for n in volumes if n.startswith("kbv3-")} == {f"kbv3-{h}-data" for h in hosts}
        assert not [v for v in volumes.values() if v.id in legacy]
    finally:
        fleet.cleanup()


@pytest.mark.parametrize("faults", ["429=0.05,409=0.05,502=0.05,504=0.05",
                                    "429=0.05,409=0.05,502=0.05,504=0.02,stall=0.03"])
def test_transient_faults_converge_on_the_first_run(tmp_path, faults):
    # A stalled answer comes after 4 s; the run gives up on a request after 1 s and retries it.
    sim_args = ["--faults", faults, "--fault-seed", "5", "--stall-ms", "4000"]
    fleet = Fleet(tmp_path, block_devices=False, sim_args=sim_args)
    try:
        assert fleet.playbook("ph3-01.yml").returncode == 0
        d = fleet.diff()
        result = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}",
                                "-e", "kbv3_api_request_timeout=1")
        assert result.returncode == 0, failures(result.stdout)
        faulted = {r["fault"] for r in fleet.sim.requests() if r["fault"]}
        assert faulted >= ({"Stall"} if "stall" in faults else {"RateLimited"}), f"the faults happened: {faulted}"
        volumes, _ = fleet.volumes()
        assert {n for n in volumes if n.startswith("kbv3-")} == {c["volume_name"] for c in d["volumes_to_create"]}
        assert not [v for v in volumes.values() if v.id in {x["id"] for x in d["volumes_to_delete"]}]
        lines = summary(result.stdout)
        assert counted(lines, "deleted") == 40 and counted(lines, "created") == 47, lines
    finally:
        fleet.cleanup()
