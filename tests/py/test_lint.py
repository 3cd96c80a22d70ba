"""The bundled playbooks pass ansible-lint's production profile."""
from conftest import run


def test_playbooks_pass_ansible_lint():
    proc = run(["ansible-lint", "playbooks/"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr
