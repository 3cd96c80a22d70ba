"""The installable collection kbv3.hcloud (`make collection`): installed with
ansible-galaxy into a temporary collections path and used from a folder
outside the repository, as a user of the tarball would."""
import ast
import json
import os
import pathlib
import shutil
import subprocess
import tomllib

import hcloud
import pytest
import yaml
from hcloud.locations import Location

from conftest import ROOT, VENV_BIN
from fleetlib import confirmation_code

VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
TARBALL = ROOT / f"kbv3-hcloud-{VERSION}.tar.gz"
QEMU = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The tarball installed into a fresh collections path; returns that path."""
    assert TARBALL.exists(), f"{TARBALL.name} is missing: `make collection` builds it (make test does)"
    where = tmp_path_factory.mktemp("collections")
    proc = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(where),
                           str(TARBALL)], capture_output=True, text=True, timeout=300, cwd=where)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return where


@pytest.fixture
def user(tmp_path, installed):
    """Runs a command in an empty project folder outside the repository, with
    only the installed collection (and the venv's ansible package) available."""
    project = tmp_path / "project"
    project.mkdir()

    def run(*cmd, env=None, check=True):
        full = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "HCLOUD_", "KBV3_"))}
        full.update(PATH=f"{VENV_BIN}:{os.environ['PATH']}", ANSIBLE_COLLECTIONS_PATH=str(installed),
                    ANSIBLE_PYTHON_INTERPRETER=str(VENV_BIN / "python"), ANSIBLE_NOCOLOR="1")
        full.update(env or {})
        proc = subprocess.run([str(c) for c in cmd], cwd=project, env=full, capture_output=True, text=True,
                              timeout=600)
        if check:
            assert proc.returncode == 0, f"{cmd}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    run.project = project
    run.collection = installed / "ansible_collections" / "kbv3" / "hcloud"
    return run


def test_the_tarball_holds_both_architectures_with_the_executable_bit(user):
    c = user.collection
    for path in ("plugins/modules/volume", "plugins/modules/volumes", "builds/linux-x86_64/kbv3_inventory",
                 "builds/linux-aarch64/volume", "builds/linux-aarch64/volumes", "builds/linux-aarch64/kbv3_inventory"):
        assert os.access(c / path, os.X_OK), path
    machine = {"builds/linux-x86_64/kbv3": 62, "builds/linux-aarch64/kbv3": 183}  # ELF e_machine: x86-64, AArch64
    for path, number in machine.items():
        header = (c / path).read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == number, path
    # One multi-call binary per architecture; every tool name links to it.
    links = {f"builds/linux-{arch}/{tool}": f"builds/linux-{arch}/kbv3" for arch in ("x86_64", "aarch64")
             for tool in ("volume", "volumes", "kbv3_inventory")}
    links.update({f"plugins/modules/{m}": "builds/linux-x86_64/kbv3" for m in ("volume", "volumes")})
    for path, target in links.items():
        assert (c / path).is_symlink() and (c / path).resolve() == (c / target).resolve(), path
    manifest = json.loads((c / "MANIFEST.json").read_text())["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("kbv3", "hcloud", VERSION)
    runtime = yaml.safe_load((c / "meta/runtime.yml").read_text())
    assert {"metadata": {"extend_group": ["hetzner.hcloud.all"]}} in runtime["action_groups"]["all"]


def test_the_tarball_leaves_room_under_galaxys_limit():
    # Galaxy refuses artifacts over 20 MB; kbv3 keeps to 8 MB so that another
    # platform still fits.
    assert TARBALL.stat().st_size <= 8_000_000, f"{TARBALL.name} is {TARBALL.stat().st_size / 1e6:.1f} MB"


def test_the_binary_under_any_name_runs_the_module_ansible_names(tmp_path):
    binary = tmp_path / "kbv3"
    shutil.copy(ROOT / "library/kbv3_volume", binary)
    answers = {}
    for module in ("kbv3.hcloud.volume", "kbv3.hcloud.volumes", None):
        args = tmp_path / "args.json"
        args.write_text(json.dumps({"_ansible_module_name": module} if module else {}))
        proc = subprocess.run([str(binary), str(args)], capture_output=True, text=True, timeout=60,
                              env={"PATH": os.environ["PATH"]})
        answers[module] = json.loads(proc.stdout)
    # Each module refuses the empty args in its own words.
    assert answers["kbv3.hcloud.volume"]["msg"] == "one of the following is required: name, id"
    assert answers["kbv3.hcloud.volumes"]["msg"].startswith("no API token")
    assert "cannot tell which module to run" in answers[None]["msg"]
    listing = subprocess.run([str(binary), "inventory", "--list"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "KBV3_FLEET_DIR": str(ROOT / "servers")})
    assert listing.returncode == 0 and "kbv3_fleet" in json.loads(listing.stdout)["all"]["vars"], listing.stderr


def test_fqcn_and_module_defaults_cover_kbv3_and_the_official_modules(user, sim):
    book = user.project / "volumes.yml"
    book.write_text(yaml.safe_dump([{
        "name": "kbv3.hcloud from an installed collection", "hosts": "localhost", "connection": "local",
        "gather_facts": False,
        # The only place the token and the endpoint are given: no HCLOUD_* in the environment.
        "module_defaults": {"group/kbv3.hcloud.all": {"api_token": sim.token, "api_endpoint": sim.endpoint}},
        "tasks": [
            {"name": "Create", "kbv3.hcloud.volume": {"name": "kbv3-siem-01-data", "size": 50, "server": "siem-01"},
             "register": "created"},
            {"name": "Read it with the official module", "hetzner.hcloud.volume_info": {"name": "kbv3-siem-01-data"},
             "register": "info"},
            {"name": "Converge it again with the fleet module",
             "kbv3.hcloud.volumes": {"volumes": [{"host": "siem-01", "name": "kbv3-siem-01-data", "size": 50,
                                                  "server": "siem-01"}]},
             "register": "again"},
            {"name": "Check", "ansible.builtin.assert": {"that": [
                "created is changed", "created.volume.server_name == 'siem-01'",
                "info.hcloud_volume_info | length == 1", "info.hcloud_volume_info[0].size == 50",
                "again is not changed", "again.hosts['siem-01'].volume.id == created.volume.id"]}},
        ]}]))
    user("ansible-playbook", book)
    requests = sim.requests()
    assert [r for r in requests if r["method"] == "POST" and r["route"] == "/volumes"], "the volume was not created"
    assert not [r for r in requests if r["status"] == 401], "a module ran without the group's token"


def test_without_module_defaults_the_same_task_has_no_token(user, sim):
    """Control for the test above: the token really comes from the group."""
    book = user.project / "bare.yml"
    book.write_text(yaml.safe_dump([{"name": "no defaults", "hosts": "localhost", "connection": "local",
                                     "gather_facts": False, "tasks": [
                                         {"kbv3.hcloud.volume": {"name": "kbv3-siem-01-data", "size": 50,
                                                                 "api_endpoint": sim.endpoint}}]}]))
    proc = user("ansible-playbook", book, check=False)
    assert proc.returncode != 0
    assert "no API token" in proc.stdout
    assert not sim.mutating()


@pytest.mark.parametrize("uname, expect", [
    ("Darwin arm64", "On macOS, run the kbv3 API tasks from a Linux controller or container"),
    ("Linux riscv64", "Run the task on a Linux x86_64 or aarch64 machine"),
])
def test_the_dispatcher_refuses_a_platform_it_has_no_build_for(user, sim, tmp_path, uname, expect):
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "uname").write_text(f"#!/bin/sh\necho '{uname}'\n")
    (fake / "uname").chmod(0o755)
    book = user.project / "platform.yml"
    book.write_text(yaml.safe_dump([{"name": "platform", "hosts": "localhost", "connection": "local",
                                     "gather_facts": False, "tasks": [
                                         {"kbv3.hcloud.volume": {"name": "kbv3-siem-01-data", "size": 50,
                                                                 "server": "siem-01", "api_token": sim.token,
                                                                 "api_endpoint": sim.endpoint}}]}]))
    proc = user("ansible-playbook", book, env={"PATH": f"{fake}:{VENV_BIN}:{os.environ['PATH']}"}, check=False)
    assert proc.returncode != 0
    assert expect in proc.stdout and "unsupported_platform" in proc.stdout
    assert uname.split()[1] in proc.stdout
    assert sim.requests() == [], "nothing may reach the API from a refused platform"
    # Positive control: the real uname (this Linux x86_64 machine) runs the module.
    user("ansible-playbook", book)
    assert sim.mutating()


AARCH64_RUNS = {
    "volume": {"name": "kbv3-vault-01-data", "size": 20, "server": "vault-01"},
    "volumes": {"volumes": [{"host": "vault-01", "name": "kbv3-vault-01-data", "size": 20, "server": "vault-01"}]},
}


@pytest.mark.skipif(QEMU is None, reason="qemu-user-static is not installed (make setup installs it)")
@pytest.mark.parametrize("module", sorted(AARCH64_RUNS))
def test_the_aarch64_modules_run_under_qemu_against_the_simulator(user, sim, tmp_path, module):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({**AARCH64_RUNS[module], "api_token": sim.token, "api_endpoint": sim.endpoint,
                                "_ansible_check_mode": False, "_ansible_diff": False}))
    proc = subprocess.run([QEMU, str(user.collection / "builds/linux-aarch64" / module), str(args)],
                          capture_output=True, text=True, timeout=300)
    result = json.loads(proc.stdout)
    assert result.get("failed") is not True, result
    volume = result["volume"] if module == "volume" else result["hosts"]["vault-01"]["volume"]
    assert result["changed"] and volume["server_name"] == "vault-01"
    assert [r for r in sim.mutating() if r["route"] == "/volumes"], "the aarch64 build sent no request"
    assert sim.token not in proc.stdout + proc.stderr


@pytest.mark.skipif(QEMU is None, reason="qemu-user-static is not installed (make setup installs it)")
def test_the_aarch64_inventory_tool_runs_under_qemu(user):
    proc = subprocess.run([QEMU, str(user.collection / "builds/linux-aarch64/kbv3_inventory"), "--list"],
                          capture_output=True, text=True, timeout=300, env={**os.environ,
                                                                           "KBV3_FLEET_DIR": str(ROOT / "servers")})
    assert proc.returncode == 0, proc.stderr
    native = subprocess.run([str(ROOT / "inventory/kbv3_inventory"), "--list"], capture_output=True, text=True,
                            env={**os.environ, "KBV3_FLEET_DIR": str(ROOT / "servers")}, check=True)
    ours, theirs = json.loads(proc.stdout), json.loads(native.stdout)
    for doc in (ours, theirs):
        doc["all"]["vars"].pop("kbv3_fleet")  # names the executable, which differs
    assert ours == theirs


def plain(value):
    """--list output without its markers of text that is never templated."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def fleet_project(user):
    servers = user.project / "servers"
    servers.mkdir()
    for name in ("servers_v3.tsv", "volume_rules_v3.tsv"):
        shutil.copy(ROOT / "servers" / name, servers / name)
    config = user.project / "fleet.kbv3.yml"
    config.write_text(yaml.safe_dump({
        "plugin": "kbv3.hcloud.fleet", "fleet_dir": "servers", "strict": True,
        "keyed_groups": [{"key": "kbv3_volume_size | string", "prefix": "size"}],
        "groups": {"big_volumes": "kbv3_volume_size >= 200"},
        "compose": {"kbv3_device_hint": "'/data/' ~ kbv3_volume_class"}}))
    return config


def test_the_inventory_plugin_builds_the_fleet_with_constructed_groups(user):
    config = fleet_project(user)
    graph = user("ansible-inventory", "-i", config, "--graph").stdout
    listed = plain(json.loads(user("ansible-inventory", "-i", config, "--list").stdout))
    script = json.loads(subprocess.run([str(ROOT / "inventory/kbv3_inventory"), "--list"], capture_output=True,
                                       text=True, check=True).stdout)
    # The same role and class groups as the repository's inventory script.
    for group in ("db_postgres", "data_db_postgres", "kbv3"):
        assert group in graph
        assert sorted(listed[group].get("hosts", [])) == sorted(script[group].get("hosts", []))
    # keyed_groups, groups and compose.
    sizes = {h: v["kbv3_volume_size"] for h, v in script["_meta"]["hostvars"].items()}
    for host, size in sizes.items():
        assert host in listed[f"size_{size}"]["hosts"]
    assert sorted(listed["big_volumes"]["hosts"]) == sorted(h for h, s in sizes.items() if s >= 200)
    hv = listed["_meta"]["hostvars"]["db-postgres-01"]
    assert hv["kbv3_device_hint"] == "/data/" + hv["kbv3_volume_class"]


def test_the_inventory_plugin_fails_on_bad_fleet_data(user):
    config = fleet_project(user)
    tsv = user.project / "servers/servers_v3.tsv"
    tsv.write_text(tsv.read_text() + "broken-01 10.9.9.9 not-tab-separated\n")
    proc = user("ansible-inventory", "-i", config, "--graph", check=False)
    assert proc.returncode != 0
    assert "servers_v3.tsv" in proc.stderr and "tab-separated" in proc.stderr
    assert "Completely failed to parse inventory source" in proc.stderr
    assert "db-postgres-01" not in proc.stdout


def test_strict_makes_a_failing_expression_fail_the_inventory(user):
    config = fleet_project(user)
    broken = config.read_text().replace("kbv3_device_hint:", "kbv3_broken: no_such_var + 1\n  kbv3_device_hint:")
    config.write_text(broken)
    proc = user("ansible-inventory", "-i", config, "--graph", check=False)
    assert proc.returncode != 0 and "no_such_var" in proc.stderr
    # Control: without strict, the expression is skipped and the fleet loads.
    config.write_text(broken.replace("strict: true", "strict: false"))
    assert "db-postgres-01" in user("ansible-inventory", "-i", config, "--graph").stdout


def test_the_plugins_own_examples_hold_after_ph3_01_found_an_orphan(user, sim, tmp_path):
    fleet_project(user)
    source = (user.collection / "plugins/inventory/fleet.py").read_text()
    examples = next(node.value.value for node in ast.parse(source).body
                    if isinstance(node, ast.Assign) and node.targets[0].id == "EXAMPLES")
    config = user.project / "fleet.kbv3.yml"
    config.write_text(examples)
    client = hcloud.Client(token=sim.token, api_endpoint=sim.endpoint)
    client.volumes.create(size=10, name="vol-orphan", location=Location(name="nbg1"))
    env = {"HCLOUD_TOKEN": sim.token, "HCLOUD_ENDPOINT": sim.endpoint}
    user("ansible-playbook", "-i", config, "kbv3.hcloud.ph3_01", env=env)
    diff = json.loads((user.project / "servers/volume_diff_v3.json").read_text())
    assert "vol-orphan" in {v["name"] for v in diff["volumes_to_delete"]}
    # The pseudo-host that owns the orphan takes part in every example group and expression.
    listed = plain(json.loads(user("ansible-inventory", "-i", config, "--list").stdout))
    assert listed["kbv3_orphans"]["hosts"] == ["kbv3-orphan-volumes"]
    assert "kbv3-orphan-volumes" in listed["size_0"]["hosts"]
    assert "kbv3-orphan-volumes" not in listed["big_volumes"]["hosts"]
    hostvars = listed["_meta"]["hostvars"]
    assert hostvars["kbv3-orphan-volumes"]["kbv3_data_dir"] == ""
    assert hostvars["db-postgres-01"]["kbv3_data_dir"] == "/data/" + hostvars["db-postgres-01"]["kbv3_volume_class"]
    # From another working directory (AWX syncs from the project's root), the
    # config's fleet_dir is still relative to the config.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(config), "--graph"], cwd=elsewhere,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(user.collection.parents[2])})
    assert proc.returncode == 0 and "kbv3-orphan-volumes" in proc.stdout, proc.stderr


def test_the_collection_playbooks_plan_then_execute_the_reviewed_diff(user, sim):
    config = fleet_project(user)
    env = {"HCLOUD_TOKEN": sim.token, "HCLOUD_ENDPOINT": sim.endpoint, "KBV3_POLL_INTERVAL_MS": "20"}
    plan = user("ansible-playbook", "-i", config, "kbv3.hcloud.ph3_01", env=env)
    # Messages name the playbooks as a collection user runs them.
    assert "ansible-playbook kbv3.hcloud.ph3_02 -e kbv3_confirm_destroy=" in plan.stdout, plan.stdout
    assert "playbooks/ph3-0" not in plan.stdout
    diff_file = user.project / "servers/volume_diff_v3.json"
    diff = json.loads(diff_file.read_text())
    assert len(diff["volumes_to_delete"]) == 40 and len(diff["volumes_to_create"]) == 47
    # The API stage only (the servers are not reachable here): a second source
    # sets every host's connection to local and turns the host side off.
    hosts = [line.split("\t")[0] for line in (user.project / "servers/servers_v3.tsv").read_text().splitlines()[1:]]
    overlay = user.project / "local.yml"
    overlay.write_text(yaml.safe_dump({"all": {"hosts": {h: {"ansible_connection": "local", "kbv3_host_side": False}
                                                         for h in hosts}}}))
    code = confirmation_code(diff_file)
    unconfirmed = user("ansible-playbook", "-i", config, "-i", overlay, "kbv3.hcloud.ph3_02", env=env, check=False)
    assert unconfirmed.returncode != 0 and not sim.mutating()
    assert f"`ansible-playbook kbv3.hcloud.ph3_02 -e kbv3_confirm_destroy={code}`" in unconfirmed.stdout
    assert "playbooks/ph3-0" not in unconfirmed.stdout
    user("ansible-playbook", "-i", config, "-i", overlay, "kbv3.hcloud.ph3_02", "-e", f"kbv3_confirm_destroy={code}",
         env=env)
    deleted = {int(r["path"].rsplit("/", 1)[1]) for r in sim.mutating() if r["method"] == "DELETE"}
    assert deleted == {v["id"] for v in diff["volumes_to_delete"]}
    # The report was written by the collection's kbv3_inventory, next to the diff.
    runs = json.loads((user.project / "servers/ph3_02_report.json").read_text())
    assert len(runs) == 1 and runs[0]["confirmation_code"] == code


def test_ansible_doc_renders_the_installed_modules_and_plugin(user):
    for name in ("kbv3.hcloud.volume", "kbv3.hcloud.volumes"):
        out = user("ansible-doc", name).stdout
        assert name in out and "api_token" in out and "check_mode" in out
    out = user("ansible-doc", "-t", "inventory", "kbv3.hcloud.fleet").stdout
    assert "keyed_groups" in out and "fleet_dir" in out
    assert "endpoint" in user("ansible-doc", "kbv3.hcloud.volume").stdout  # the alias is documented
    # ansible-core lists no linked module (links are aliases to it) and cannot
    # read a binary as text; with links only, the listing warns about nothing.
    listing = user("ansible-doc", "-l", "kbv3.hcloud")
    assert "WARNING" not in listing.stdout + listing.stderr and "utf-8" not in listing.stderr
    plugins = user("ansible-doc", "-t", "inventory", "-l", "kbv3.hcloud").stdout
    assert plugins.startswith("kbv3.hcloud.fleet ")


def test_ansible_lint_production_profile_passes_on_the_installed_collection(user):
    proc = subprocess.run([str(VENV_BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor"],
                          cwd=user.collection, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(user.collection.parents[2]),
                               "PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr


def test_ansible_test_sanity_passes_with_nothing_ignored(tmp_path):
    # The module files are links to the binaries, which ansible-test leaves alone.
    assert not (ROOT / "collection/tests/sanity").exists()
    work = tmp_path / "sanity"
    try:
        proc = subprocess.run([str(ROOT / "scripts/sanity.sh")], capture_output=True, text=True, timeout=1200,
                              env={**os.environ, "KBV3_SANITY_DIR": str(work)})
    finally:
        shutil.rmtree(work, ignore_errors=True)  # ansible-test's venvs: a few hundred MB
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    ran = [line for line in proc.stdout.splitlines() if line.startswith("Running sanity test")]
    assert any('"validate-modules"' in line for line in ran) and any('"pylint"' in line for line in ran), ran
