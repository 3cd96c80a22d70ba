"""kbv3_inventory through the real ansible-inventory and ansible-playbook,
and the PH3-01 commands against the seeded simulator."""
import hashlib
import json
import pathlib
import shutil

import pytest

from conftest import INVENTORY, ROOT, run

EXPECTED = pathlib.Path(__file__).parent / "expected"

# The PH3-01 report's role table: role -> (volume class, size in GB).
REPORT_SIZES = {
    "k8s-master": 20, "k8s-worker": 50, "db-postgres": 100, "db-mariadb": 100, "db-proxysql": 20,
    "db-temporal": 50, "db-analytics": 50, "redis": 20, "rabbitmq": 30, "minio": 200, "vault": 20,
    "backup": 500, "vector-db": 50, "mail-core": 50, "mail-mx": 30, "builder": 20, "lb-internal": 10,
    "siem": 50, "monitoring": 50,
    # The small application roles share apps_misc.
    "app-analytics": 20, "lb-apigw": 20, "app-nocode": 20, "app-crm": 20, "app-etl": 20,
    "llm-proxy": 20, "ml-platform": 20, "app-temporal": 20,
}
APPS_MISC = {"app-analytics", "lb-apigw", "app-nocode", "app-crm", "app-etl", "llm-proxy", "ml-platform", "app-temporal"}


def env_for(fleet_dir, **extra):
    return {"KBV3_FLEET_DIR": str(fleet_dir), **extra}


def test_graph_matches_the_expected_output(fleet_dir):
    proc = run(["ansible-inventory", "--graph"], env=env_for(fleet_dir), check=True)
    assert proc.stdout == (EXPECTED / "graph.txt").read_text()
    assert proc.stderr == ""


def test_list_and_host(fleet_dir):
    inv = json.loads(run(["ansible-inventory", "--list"], env=env_for(fleet_dir), check=True).stdout)
    hostvars = inv["_meta"]["hostvars"]
    assert len(hostvars) == 47
    assert inv["kbv3"]["children"] == sorted(inv["kbv3"]["children"])
    assert len(inv["kbv3"]["children"]) == 27
    assert inv["data_apps_misc"]["hosts"] == sorted(
        h for h, v in hostvars.items() if v["role_v3"] in APPS_MISC)
    # Where the tool and the files it read are, for the playbooks (a var of `all`).
    fleet = hostvars["db-postgres-01"].pop("kbv3_fleet")
    assert fleet["inventory"] == str(INVENTORY.resolve())
    assert fleet["env"]["KBV3_SERVERS_FILE"] == str(fleet_dir / "servers_v3.tsv")
    assert fleet["env"]["KBV3_DIFF_FILE"] == str(fleet_dir / "volume_diff_v3.json")
    assert hostvars["db-postgres-01"] == {
        "ansible_host": "10.0.0.120", "role_v3": "db-postgres", "kbv3_volume_name": "kbv3-db-postgres-01-data",
        "kbv3_volume_size": 100, "kbv3_volume_class": "db-postgres", "kbv3_mountpoint": "/data/db_postgres",
    }
    host = json.loads(run(["ansible-inventory", "--host", "baserow-01"], env=env_for(fleet_dir), check=True).stdout)
    assert host["kbv3_mountpoint"] == "/data/apps_misc" and host["kbv3_volume_size"] == 20
    missing = run(["ansible-inventory", "--host", "nope"], env=env_for(fleet_dir))
    assert missing.returncode != 0


def test_script_protocol_directly_and_from_another_directory(fleet_dir, tmp_path):
    proc = run([str(INVENTORY), "--list"], cwd=tmp_path, check=True)
    assert proc.stderr == ""
    assert len(json.loads(proc.stdout)["_meta"]["hostvars"]) == 47
    assert json.loads(run([str(INVENTORY), "--host", "nope"], cwd=tmp_path, check=True).stdout) == {}


def test_plan_matches_the_report(fleet_dir):
    run([str(INVENTORY), "plan"], env=env_for(fleet_dir), check=True)
    plan = json.loads((fleet_dir / "volume_plan_v3.json").read_text())
    assert plan["totals"] == {"servers": 47, "volumes": 47, "size_gb": 2800}
    for v in plan["volumes"]:
        assert v["size_gb"] == REPORT_SIZES[v["role_v3"]], v
        assert v["volume_name"] == f"kbv3-{v['hostname']}-data"
        klass = "apps_misc" if v["role_v3"] in APPS_MISC else v["role_v3"].replace("-", "_")
        assert v["mountpoint"] == f"/data/{klass}"


def test_existing_and_diff_against_the_seeded_simulator(fleet_dir, sim):
    api = {"HCLOUD_TOKEN": sim.token, "HCLOUD_ENDPOINT": sim.endpoint}
    run([str(INVENTORY), "plan"], env=env_for(fleet_dir), check=True)
    existing = run([str(INVENTORY), "existing"], env=env_for(fleet_dir, **api), check=True)
    assert "40 attached, 0 detached; by location: hel1 4, nbg1 36" in existing.stdout
    snap = json.loads((fleet_dir / "existing_volumes_hetzner.json").read_text())
    assert snap["totals"]["volumes"] == 40
    assert sim.token not in existing.stdout + existing.stderr + json.dumps(snap)
    diff = run([str(INVENTORY), "diff"], env=env_for(fleet_dir, **api), check=True)
    print(diff.stdout)
    d = json.loads((fleet_dir / "volume_diff_v3.json").read_text())
    assert (d["totals"]["to_create"], d["totals"]["to_delete"], d["totals"]["ok"]) == (47, 40, 0)
    assert {v["id"]: v["server_name"] for v in d["volumes_to_delete"]}[104011414] == "db-postgres-01"
    assert all(v["reason"] for v in d["volumes_to_delete"] + d["volumes_to_create"])
    # Offline, from the snapshot file: the same lists.
    offline = run([str(INVENTORY), "diff", "--existing", str(fleet_dir / "existing_volumes_hetzner.json"),
                   "--output", str(fleet_dir / "offline.json")], env=env_for(fleet_dir), check=True)
    o = json.loads((fleet_dir / "offline.json").read_text())
    assert o["volumes_to_delete"] == d["volumes_to_delete"] and o["volumes_to_create"] == d["volumes_to_create"]
    assert "to delete:   40" in offline.stdout
    # With the diff in place, each host carries exactly its legacy volumes.
    inv = json.loads(run(["ansible-inventory", "--list"], env=env_for(fleet_dir), check=True).stdout)
    legacy = {h: [v["id"] for v in hv["kbv3_legacy_volumes"]] for h, hv in inv["_meta"]["hostvars"].items()}
    assert sum(len(v) for v in legacy.values()) == 40
    assert legacy["db-postgres-03"] == [104011411] and legacy["builder-01"] == []
    assert inv["kbv3_orphans"]["hosts"] == [] if "hosts" in inv.get("kbv3_orphans", {}) else True
    assert inv["_meta"]["hostvars"]["builder-01"]["kbv3_diff"]["confirmation_code"] == hashlib.sha256(
        (fleet_dir / "volume_diff_v3.json").read_bytes()).hexdigest()[:12]
    # Only GETs were sent.
    assert sim.mutating() == []


BAD_TSV_CASES = [
    ("missing column", "HOSTNAME\tIP_PRIVEE\nx\t10.0.0.1\n", ":1: the header must name the columns HOSTNAME, IP_PRIVEE, ROLE_V3"),
    ("spaces", "HOSTNAME\tIP_PRIVEE\tROLE_V3\nredis-09 10.9.0.1 redis\n", ":2: expected 3 tab-separated fields"),
    ("unknown role", "HOSTNAME\tIP_PRIVEE\tROLE_V3\nx\t10.9.0.1\tdb-pg\n", ":2: unknown role 'db-pg'; known roles: app-analytics,"),
    ("bad ip", "HOSTNAME\tIP_PRIVEE\tROLE_V3\nx\t10.9.0.999\tredis\n", ":2: IP_PRIVEE '10.9.0.999' is not a valid IPv4 address"),
    ("empty field", "HOSTNAME\tIP_PRIVEE\tROLE_V3\n\t10.9.0.1\tredis\n", ":2: empty HOSTNAME"),
]


@pytest.mark.parametrize("case,text,message", BAD_TSV_CASES, ids=[c[0] for c in BAD_TSV_CASES])
def test_bad_fleet_file_is_reported_with_file_and_line(fleet_dir, case, text, message):
    (fleet_dir / "servers_v3.tsv").write_text(text)
    proc = run([str(INVENTORY), "--list"], env=env_for(fleet_dir))
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"{fleet_dir}/servers_v3.tsv{message}" in proc.stderr, proc.stderr
    assert "panicked" not in proc.stderr


def test_all_problems_are_reported_at_once(fleet_dir):
    good = (ROOT / "servers" / "servers_v3.tsv").read_text().splitlines()
    broken = good[:3] + [good[2], "y\t10.0.0.139\tredis"] + good[3:]
    (fleet_dir / "servers_v3.tsv").write_text("\n".join(broken) + "\n")
    proc = run([str(INVENTORY), "--list"], env=env_for(fleet_dir))
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3, proc.stderr
    assert "duplicate hostname 'analytics-db-01' (first on line 3)" in lines[0]
    assert "duplicate IP_PRIVEE 10.0.0.139 (first on line 2)" in lines[2]


def test_malformed_rules_and_diff_files(fleet_dir):
    (fleet_dir / "volume_diff_v3.json").write_text("{not json")
    proc = run([str(INVENTORY), "--list"], env=env_for(fleet_dir))
    assert proc.returncode == 1
    assert f"{fleet_dir}/volume_diff_v3.json:1: not a valid PH3-01 diff" in proc.stderr
    (fleet_dir / "volume_diff_v3.json").unlink()
    (fleet_dir / "volume_rules_v3.tsv").write_text("ROLE_V3\tVOLUME_CLASS\tSIZE_GB\nredis\tredis\t5\n")
    proc = run([str(INVENTORY), "--list"], env=env_for(fleet_dir))
    assert f"{fleet_dir}/volume_rules_v3.tsv:2: SIZE_GB must be between 10 and 10240 (GB), got 5" in proc.stderr


def test_a_broken_fleet_file_stops_the_playbook(fleet_dir, tmp_path):
    (fleet_dir / "servers_v3.tsv").write_text("HOSTNAME\tIP_PRIVEE\tROLE_V3\nx\t10.0.0.1\tdb-pg\n")
    play = tmp_path / "noop.yml"
    play.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: msg=hi\n")
    proc = run(["ansible-playbook", str(play)], env=env_for(fleet_dir))
    assert proc.returncode != 0
    assert "unknown role 'db-pg'" in proc.stdout + proc.stderr
    assert "hi" not in proc.stdout


def test_a_fresh_clone_is_told_to_build_before_the_first_playbook(tmp_path):
    """Before `make build`, the inventory that ansible.cfg names explains
    itself instead of a bare parse failure."""
    clone = tmp_path / "clone"
    for part in ("ansible.cfg", "inventory/kbv3.sh", "playbooks", "servers/servers_v3.tsv",
                 "servers/volume_rules_v3.tsv"):
        src, dest = ROOT / part, clone / part
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copy2(src, dest)
    proc = run(["ansible-playbook", "playbooks/ph3-01.yml"], cwd=clone, env={"ANSIBLE_CONFIG": str(clone / "ansible.cfg")})
    assert proc.returncode != 0
    assert "is not built yet" in proc.stderr and "make build" in proc.stderr
    assert "plugin: kbv3.hcloud.fleet" in proc.stderr
    # Control: with the binary in place the same inventory loads.
    shutil.copy2(INVENTORY, clone / "inventory/kbv3_inventory")
    graph = run(["ansible-inventory", "--graph"], cwd=clone, env={"ANSIBLE_CONFIG": str(clone / "ansible.cfg")})
    assert graph.returncode == 0 and "db-postgres-01" in graph.stdout
