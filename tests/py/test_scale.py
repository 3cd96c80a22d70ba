"""A generated 1,000-server fleet (scripts/generate_fleet.py): the inventory
takes it, the simulator serves it, and PH3-01 reads it with paged lists only.
Requests are counted, not timed (timings belong to `make bench`)."""
import json
import math
import subprocess
import sys

from conftest import INVENTORY, ROOT, Sim, run


def test_a_generated_fleet_of_1000_servers_through_ph3_01(tmp_path):
    fleet = tmp_path / "fleet1000"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_fleet.py"), "1000", str(fleet)],
                         capture_output=True, text=True, check=True)
    counts = json.loads(out.stdout)
    assert counts["servers"] == 1000 and counts["legacy_attached"] > 700 and counts["legacy_unattached"] == 50
    again = tmp_path / "again"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_fleet.py"), "1000", str(again)], check=True,
                   capture_output=True)
    assert (again / "hcloud-sim-seed.json").read_bytes() == (fleet / "hcloud-sim-seed.json").read_bytes(), "deterministic"

    sim = Sim(tmp_path, seed=fleet / "hcloud-sim-seed.json")
    try:
        env = {"KBV3_FLEET_DIR": str(fleet), "HCLOUD_TOKEN": sim.token, "HCLOUD_ENDPOINT": sim.endpoint}
        for command in ("plan", "existing", "diff"):
            run([str(INVENTORY), command], env=env, check=True)
        requests = sim.requests()
    finally:
        sim.stop()
    volumes = counts["legacy_attached"] + counts["legacy_unattached"]
    pages = math.ceil(1000 / 50) + math.ceil(volumes / 50)
    assert [r["method"] for r in requests] == ["GET"] * (2 * pages), "two snapshots of paged lists, nothing else"
    assert all("per_page=50" in r["query"] for r in requests)
    d = json.loads((fleet / "volume_diff_v3.json").read_text())
    t = d["totals"]
    assert (t["target"], t["to_create"], t["to_delete"], t["left_alone"]) == (1000, 1000, volumes, 0)

    inv = json.loads(run([str(INVENTORY), "--list"], env={"KBV3_FLEET_DIR": str(fleet)}, check=True).stdout)
    hostvars = inv["_meta"]["hostvars"]
    assert len(hostvars) == 1001, "1,000 servers and the orphans' pseudo-host"
    assert len(hostvars["kbv3-orphan-volumes"]["kbv3_legacy_volumes"]) == counts["legacy_unattached"]
    assert sum(len(v.get("kbv3_legacy_volumes", [])) for h, v in hostvars.items()
               if h != "kbv3-orphan-volumes") == counts["legacy_attached"]
