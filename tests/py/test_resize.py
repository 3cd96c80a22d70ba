"""Filesystems grow with their volumes: when PH3-02 grows a kbv3 volume that
is smaller than planned (the diff's volumes_to_fix), the host side grows its
filesystem, ext4 and xfs, on real loop devices (the simulator refreshes a loop
device when its volume is resized), and never remakes it."""
import json
import os
import subprocess

import pytest

from fleetlib import Fleet, failures, mutating, needs_root, recap, summary

GIB = 1 << 30
# host: (role, mountpoint under the mount root, filesystem, planned GB, grown GB)
HOSTS = {
    "haproxy-01": ("lb-internal", "/data/lb_internal", "ext4", 10, 12),
    "crm-01": ("app-crm", "/data/apps_misc", "xfs", 20, 23),
}


def can_grow_mounted_ext4():
    """Online ext4 growth (resize2fs on a mounted filesystem) needs
    CAP_SYS_RESOURCE, which containers (and some CI machines) lack."""
    with open("/proc/self/status") as status:
        caps = next(int(line.split()[1], 16) for line in status if line.startswith("CapEff:"))
    return bool(caps & (1 << 24))


def loops_under(path):
    listing = subprocess.run(["losetup", "-J", "-l"], capture_output=True, text=True).stdout or '{"loopdevices": []}'
    return [d["name"] for d in json.loads(listing).get("loopdevices", []) if (d.get("back-file") or "").startswith(str(path))]


@pytest.fixture
def two_hosts(tmp_path):
    """Two fleet hosts on loop devices: haproxy-01 with ext4, crm-01 with xfs
    (a host variable in the inventory overlay, as an operator's host_vars)."""
    fleet = Fleet(tmp_path, block_devices=True, hosts=list(HOSTS))
    overlay = json.loads(fleet.overlay.read_text())
    for host, (_, _, fstype, _, _) in HOSTS.items():
        overlay["all"]["hosts"][host]["kbv3_filesystem"] = fstype
    fleet.overlay.write_text(json.dumps(overlay))
    yield fleet
    fleet.cleanup()
    assert fleet.mounts() == {}, "the test left mounts behind"
    assert loops_under(tmp_path) == [], "the test left loop devices behind"


def fs_bytes(path):
    """The size of the filesystem mounted at `path`, as df shows it."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


def about(size_bytes, gb):
    """A filesystem made for (or grown to) a `gb` GB device: the device's size
    less the filesystem's own metadata (journal, inode tables, log)."""
    return 0.95 * gb * GIB <= size_bytes <= gb * GIB


def plan_sizes(fleet, sizes):
    """Edits the fleet's per-role sizes (volume_rules_v3.tsv), as an operator would."""
    rules = fleet.fleet / "volume_rules_v3.tsv"
    lines = rules.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        role, cls, size = line.split("\t")
        out.append("\t".join([role, cls, str(sizes.get(role, size))]))
    rules.write_text("\n".join(out) + "\n")


@needs_root
def test_filesystems_grow_with_their_volumes(two_hosts):
    fleet = two_hosts
    mountpoint = {h: fleet.mnt / mp.lstrip("/") for h, (_, mp, _, _, _) in HOSTS.items()}

    # First PH3-01 and PH3-02: the volumes are created, formatted and mounted.
    ph301 = fleet.playbook("ph3-01.yml")
    assert ph301.returncode == 0, failures(ph301.stdout)
    first = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert first.returncode == 0, failures(first.stdout)
    mounts = fleet.mounts()
    assert {h: mounts[str(p)]["fstype"] for h, p in mountpoint.items()} == {h: v[2] for h, v in HOSTS.items()}
    uuids = {f[1]: f[0] for f in fleet.fstab_lines()}
    for host, (_, _, _, old, _) in HOSTS.items():
        # Positive control: the filesystem has its volume's first size.
        assert about(fs_bytes(mountpoint[host]), old), (host, fs_bytes(mountpoint[host]), old)
        (mountpoint[host] / "precious.txt").write_text(f"keep me, {host}")

    # The plan wants bigger volumes: PH3-01 lists them to grow.
    plan_sizes(fleet, {role: new for role, _, _, _, new in HOSTS.values()})
    ph301 = fleet.playbook("ph3-01.yml")
    assert ph301.returncode == 0, failures(ph301.stdout)
    d = fleet.diff()
    fix = {f["volume_name"]: f for f in d["volumes_to_fix"]}
    assert sorted(fix) == sorted(f"kbv3-{h}-data" for h in HOSTS), d["volumes_to_fix"]
    assert d["totals"]["to_delete"] == 0 and d["totals"]["to_create"] == 0

    # A dry run predicts the fixes and changes nothing, on the API or on the hosts.
    start = len(fleet.sim.requests())
    dry = fleet.playbook("ph3-02.yml", "--check", "--diff")
    assert dry.returncode == 0, failures(dry.stdout)
    assert "would fix: 2 volumes (attached, moved or grown)" in summary(dry.stdout), summary(dry.stdout)
    assert mutating(fleet.sim, start) == []
    for host, (_, _, _, old, _) in HOSTS.items():
        assert about(fs_bytes(mountpoint[host]), old), f"the dry run changed the filesystem of {host}"

    # The real run grows the volumes, then their filesystems: xfs online (it
    # grows only mounted), ext4 online where the machine allows it.
    run = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    volumes, _ = fleet.volumes()
    assert {h: volumes[f"kbv3-{h}-data"].size for h in HOSTS} == {h: v[4] for h, v in HOSTS.items()}
    assert about(fs_bytes(mountpoint["crm-01"]), HOSTS["crm-01"][4]), fs_bytes(mountpoint["crm-01"])
    ext4_mp = mountpoint["haproxy-01"]
    if can_grow_mounted_ext4():
        assert run.returncode == 0, failures(run.stdout)
    else:
        # This machine refuses online ext4 growth: the host fails, saying why
        # and what to do; its filesystem stays mounted, whole, and its old size.
        assert run.returncode != 0
        assert "failed hosts: 1 (haproxy-01)" in summary(run.stdout), summary(run.stdout)
        assert f"did not grow to its volume's {HOSTS['haproxy-01'][4]} GB" in run.stdout, failures(run.stdout)
        assert f"unmount it (umount {ext4_mp})" in run.stdout, failures(run.stdout)
        assert about(fs_bytes(ext4_mp), HOSTS["haproxy-01"][3])
        assert str(ext4_mp) in fleet.mounts()
        # The operator stops what uses it and unmounts it; PH3-02 again grows
        # it before mounting it (offline) and mounts it again.
        subprocess.run(["umount", str(ext4_mp)], check=True)
        run = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
        assert run.returncode == 0, failures(run.stdout)
    for host, (_, _, _, _, new) in HOSTS.items():
        assert about(fs_bytes(mountpoint[host]), new), (host, fs_bytes(mountpoint[host]), new)
        assert (mountpoint[host] / "precious.txt").read_text() == f"keep me, {host}"
    assert {f[1]: f[0] for f in fleet.fstab_lines()} == uuids, "the filesystems were grown, not remade"
    assert {h: fleet.mounts()[str(p)]["fstype"] for h, p in mountpoint.items()} == {h: v[2] for h, v in HOSTS.items()}

    # A filesystem that fills its volume is left alone: a rerun changes nothing.
    again = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert again.returncode == 0, failures(again.stdout)
    assert all(r["changed"] == 0 for r in recap(again.stdout).values()), recap(again.stdout)

    # Never a filesystem over another one: told that crm-01 wants ext4, the
    # host side refuses its xfs device and leaves it as it is.
    overlay = json.loads(fleet.overlay.read_text())
    overlay["all"]["hosts"]["crm-01"]["kbv3_filesystem"] = "ext4"
    fleet.overlay.write_text(json.dumps(overlay))
    other = fleet.playbook("ph3-02.yml", "-e", f"kbv3_confirm_destroy={fleet.code()}")
    assert other.returncode != 0
    assert "failed hosts: 1 (crm-01)" in summary(other.stdout), summary(other.stdout)
    assert "is already used as xfs, use force=true to overwrite" in other.stdout, failures(other.stdout)
    assert fleet.mounts()[str(mountpoint["crm-01"])]["fstype"] == "xfs"
    assert (mountpoint["crm-01"] / "precious.txt").read_text() == "keep me, crm-01"
    assert {f[1]: f[0] for f in fleet.fstab_lines()} == uuids
