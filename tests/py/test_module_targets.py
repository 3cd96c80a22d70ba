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

    def start():
        subprocess.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(d / "sshd.log")], check=True)

    def stop():
        pid = int((d / "sshd.pid").read_text())
        os.kill(pid, 15)
        subprocess.run(["sh", "-c", f"while kill -0 {pid} 2>/dev/null; do sleep 0.05; done"], timeout=30)

    def new_host_key():
        """The same address and port, another machine: a new host key."""
        stop()
        for f in ("host", "host.pub"):
            (d / f).unlink()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
        start()

    start()
    yield {"port": port, "key": d / "client", "new_host_key": new_host_key}
    stop()


@needs_root
def test_module_runs_on_a_target_over_ssh_trusting_its_key_on_first_use(sim, sshd, tmp_path):
    # The repository's ansible.cfg decides host key checking; only the
    # known_hosts file is private to the test.
    known_hosts = tmp_path / "known_hosts"
    inventory = tmp_path / "ssh_inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"target": {
        "ansible_host": "127.0.0.1", "ansible_port": sshd["port"], "ansible_user": "root",
        "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": str(sshd["key"]),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts} -o ControlMaster=no",
    }}}}))
    book = tmp_path / "ssh.yml"
    book.write_text(json.dumps([{"hosts": "target", "gather_facts": False, "tasks": [{
        "kbv3_volume": {"name": "kbv3-vector-db-01-data", "size": 50, "server": "vector-db-01",
                        "api_token": sim.token, "api_endpoint": sim.endpoint},
        "register": "r"}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    # Each run its own SSH control sockets, so the second run cannot reuse the first one's connection.
    control_dirs = [tmp_path / "cp-1", tmp_path / "cp-2"]
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(book)], cwd=ROOT, timeout=300,
                          env={**env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dirs[0])}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["target"]
    assert result["changed"] is True and result["volume"]["server_name"] == "vector-db-01"
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{sshd['port']}", "-f", str(known_hosts)], capture_output=True)
    assert found.returncode == 0, "the first key was recorded"
    # Another machine at the same address: its key is refused, the module never runs there.
    sshd["new_host_key"]()
    before = len(sim.requests())
    again = subprocess.run(["ansible-playbook", "-i", str(inventory), str(book)], cwd=ROOT, timeout=300,
                           env={**env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dirs[1])}, capture_output=True, text=True)
    # End the persistent SSH connections the runs left, so nothing outlives the test.
    for socket_path in (p for d in control_dirs if d.exists() for p in d.iterdir()):
        subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "target"], capture_output=True, timeout=30)
    assert again.returncode != 0
    assert "Host key verification failed" in again.stdout + again.stderr, again.stdout[-2000:]
    assert len(sim.requests()) == before


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
