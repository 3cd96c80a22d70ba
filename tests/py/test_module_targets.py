"""kbv3_volume where it really runs: on a target reached over SSH, and in an
empty root file system (nothing but the binary)."""
import json
import os
import shutil
import socket
import subprocess

import pytest

from conftest import ROOT, play

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sshd, chroot)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """sshd on 127.0.0.1 at a free high port, key authentication only."""
    d = tmp_path / "ssh"
    d.mkdir()
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    port = free_port()
    config = d / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
""")
    os.makedirs("/run/sshd", exist_ok=True)
    subprocess.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(d / "sshd.log")], check=True)
    yield {"port": port, "key": d / "client"}
    pid = int((d / "sshd.pid").read_text())
    os.kill(pid, 15)


@needs_root
def test_module_runs_on_a_target_over_ssh(sim, sshd, tmp_path):
    inventory = tmp_path / "ssh_inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"target": {
        "ansible_host": "127.0.0.1", "ansible_port": sshd["port"], "ansible_user": "root",
        "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": str(sshd["key"]),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    }}}}))
    book = tmp_path / "ssh.yml"
    book.write_text(json.dumps([{"hosts": "target", "gather_facts": False, "tasks": [{
        "kbv3_volume": {"name": "kbv3-vector-db-01-data", "size": 50, "server": "vector-db-01",
                        "api_token": sim.token, "api_endpoint": sim.endpoint},
        "register": "r"}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(book)], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["target"]
    assert result["changed"] is True and result["volume"]["server_name"] == "vector-db-01"


@needs_root
def test_the_binary_needs_nothing_on_the_target(sim, tmp_path):
    """In an empty root (no libc, no CA files, no /etc), the module still talks to the API."""
    root = tmp_path / "empty-root"
    root.mkdir()
    shutil.copy(ROOT / "library" / "kbv3_volume", root / "kbv3_volume")
    args = json.dumps({"name": "vol-vault-01", "api_token": sim.token, "api_endpoint": sim.endpoint})
    proc = subprocess.run(["chroot", str(root), "/kbv3_volume"], input=args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["changed"] is False and result["volume"]["id"] > 0
    file_out = subprocess.run(["file", str(ROOT / "library" / "kbv3_volume")], capture_output=True, text=True).stdout
    assert "static" in file_out, file_out
