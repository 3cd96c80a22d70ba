"""The module and the inventory against hostile endpoints on 127.0.0.1:
endpoints that echo the token, stall, or present a certificate nobody
signed. The token must appear nowhere (results, messages, stderr, -vvv
output), every run must end within its deadline with a message that says
what happened, and http:// to another machine is refused before any packet."""
import json
import os
import shutil

import pytest

from conftest import INVENTORY, ROOT, run, run_module
from hostile import Hostile

SECRET = "kbv3-hostile-test-token-5e1d"
ECHOES = {
    "echo401": "token rejected: Bearer ***",
    "echo500html": "unexpected HTTP 500 answer that is not Hetzner API JSON",
    "echo502": "upstream saw Bearer *** (bad_gateway",
    "echo200text": "unexpected HTTP 200 answer that is not Hetzner API JSON",
}
FAST = {"KBV3_RETRY_BASE_MS": "10", "KBV3_POLL_INTERVAL_MS": "10"}


@pytest.fixture
def hostile():
    h = Hostile()
    yield h
    h.stop()


def module(args, tmp_path, env=None, prefix=()):
    """The module with the test's token and no_log; nothing it prints holds the token."""
    proc = run_module({"api_token": SECRET, "_ansible_no_log": True, **args}, tmp_path,
                      env={"HCLOUD_TOKEN": "", **FAST, **(env or {})}, prefix=prefix)
    assert SECRET not in proc.stdout + proc.stderr, proc.stdout
    return json.loads(proc.stdout)


@pytest.mark.parametrize("mode", sorted(ECHOES))
def test_an_endpoint_that_echoes_the_token_never_gets_it_shown(hostile, tmp_path, mode):
    r = module({"id": 7, "state": "absent", "api_endpoint": hostile.url(mode), "wait_timeout": 30}, tmp_path)
    assert r["failed"] and r["failure"]["code"] == "api_error", r
    assert ECHOES[mode] in r["msg"], r["msg"]
    assert "Bearer " + SECRET[:6] not in json.dumps(r)
    assert hostile.requests, "the endpoint was reached and echoed"
    # The inventory's PH3-01 snapshot against the same endpoint: stderr is clean too.
    proc = run([str(INVENTORY), "existing", "--output", str(tmp_path / "snap.json")],
               env={"HCLOUD_TOKEN": SECRET, "HCLOUD_ENDPOINT": hostile.url(mode), **FAST})
    assert proc.returncode == 1 and SECRET not in proc.stdout + proc.stderr
    assert proc.stderr.startswith("kbv3_inventory: cannot list the existing volumes"), proc.stderr


def test_no_log_and_vvv_show_no_token(hostile, tmp_path):
    book = tmp_path / "echo.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"kbv3_volume": {"id": 7, "state": "absent", "api_token": SECRET, "api_endpoint": hostile.url(mode)}, "no_log": no_log,
         "ignore_errors": True, "register": f"r_{mode}"}
        for mode in ("echo401", "echo500html") for no_log in (True, False)] + [
        {"ansible.builtin.copy": {"content": "{{ [r_echo401, r_echo500html] | to_json }}", "dest": str(tmp_path / "out.json")}}]}]))
    proc = run(["ansible-playbook", "-vvv", "-i", "localhost,", "-c", "local", str(book)],
               env={"ANSIBLE_PYTHON_INTERPRETER": str(ROOT / ".venv" / "bin" / "python"), **FAST})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert len(hostile.requests) == 4
    for text in (proc.stdout, proc.stderr, (tmp_path / "out.json").read_text()):
        assert SECRET not in text
    assert "token rejected: Bearer ***" in proc.stdout, "the echo came back, scrubbed"


def test_a_stalling_endpoint_ends_within_the_deadline(hostile, tmp_path):
    r = module({"id": 7, "state": "absent", "api_endpoint": hostile.url("stall"), "wait_timeout": 3}, tmp_path)
    assert r["failed"] and r["failure"]["code"] == "timeout"
    assert r["msg"].startswith("cannot read volume 7: the deadline of 3s (wait_timeout) ran out while"), r["msg"]
    assert len(hostile.requests) >= 1


def test_a_self_signed_certificate_fails_at_once(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the certificate")
    tls = Hostile(tls_dir=tmp_path)
    try:
        r = module({"id": 7, "state": "absent", "api_endpoint": tls.url("missing"), "wait_timeout": 60}, tmp_path)
    finally:
        tls.stop()
    assert r["failed"] and "TLS failed, not retried" in r["msg"], r["msg"]
    assert r["api_requests"]["retries"] == 0 and r["api_requests"]["requests"] == {"GET": 1}


@pytest.mark.parametrize("token,endpoint,message", [
    ("line\nbreak", None, "the API token contains a line break"),
    (SECRET, "ftp://127.0.0.1:1/v1", "uses ftp://; only https://"),
    (SECRET, "127.0.0.1:1", "is not a valid URL"),
])
def test_unusable_tokens_and_endpoints_fail_before_any_request(hostile, tmp_path, token, endpoint, message):
    r = module({"id": 7, "state": "absent", "api_token": token, "api_endpoint": endpoint or hostile.url("ok")}, tmp_path)
    assert r["failed"] and r["failure"]["code"] == "invalid_argument" and message in r["msg"], r["msg"]
    assert "line\nbreak" not in r["msg"]
    assert hostile.requests == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="a private /etc/hosts needs root")
def test_http_to_another_host_is_refused_before_any_packet(hostile, tmp_path):
    # A name that is not a loopback name but resolves to this machine, in a
    # private /etc/hosts: had the check looked at the address, it would pass.
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 api.kbv3-test.example\n")
    prefix = ["unshare", "--mount", "--", "sh", "-c", f"mount --bind {hosts} /etc/hosts && exec \"$@\"", "sh"]
    endpoint = hostile.url("missing", host="api.kbv3-test.example")
    refused = module({"id": 7, "state": "absent", "api_endpoint": endpoint}, tmp_path, prefix=prefix)
    assert refused["failed"] and refused["failure"]["code"] == "invalid_argument"
    assert "uses http:// to a host that is not this machine" in refused["msg"]
    assert "allow_insecure_http" in refused["msg"] and "KBV3_ALLOW_INSECURE_HTTP" in refused["msg"]
    assert hostile.requests == []
    # Positive control: allowed explicitly, the same name reaches the server.
    for args, env in (({"allow_insecure_http": True}, {}), ({}, {"KBV3_ALLOW_INSECURE_HTTP": "1"})):
        allowed = module({"id": 7, "state": "absent", "api_endpoint": endpoint, **args}, tmp_path, env=env, prefix=prefix)
        assert not allowed.get("failed") and allowed["msg"] == "volume 7 does not exist (no change)", allowed
    assert len(hostile.requests) == 2


def test_extreme_numbers_are_refused_with_the_value_given(tmp_path):
    cases = [
        ({"wait_timeout": 1e19}, "argument 'wait_timeout': 1e+19 is not a whole number in range"),
        ({"wait_timeout": 0}, "argument 'wait_timeout': must be between 1 and 86400, got 0"),
        ({"wait_timeout": 10 ** 30}, "argument 'wait_timeout': 1e+30 is not a whole number in range"),
        ({"request_timeout": -1}, "argument 'request_timeout': must be between 1 and 3600, got -1"),
        ({"size": 2 ** 40}, "argument 'size': must be between 10 and 10240 (GB), got 1099511627776"),
        ({"size": -20}, "argument 'size': must be between 10 and 10240 (GB), got -20"),
        ({"id": 0}, "argument 'id': must be between 1 and 9223372036854775807, got 0"),
        ({"id": "9" * 30}, f"argument 'id': '{'9' * 30}' is not an integer (or out of range)"),
        ({"state": "absent", "expect": {"id": -1}}, "argument 'expect.id': must be between 1 and"),
        ({"state": "absent", "expect": {"id": 1, "size": 2 ** 63}}, f"argument 'expect.size': {2 ** 63} is not a whole number in range"),
    ]
    for extra, message in cases:
        r = module({"name": "v", "api_endpoint": "http://127.0.0.1:1/v1", **extra}, tmp_path)
        assert r["failed"] and r["failure"]["code"] == "invalid_argument", (extra, r)
        assert r["msg"].startswith(message), (extra, r["msg"])


def pieces(secret, width=8):
    """Every piece of `secret` of `width` characters."""
    return {secret[i:i + width] for i in range(len(secret) - width + 1)}


def shows_a_piece(text, secret=SECRET):
    return sorted(p for p in pieces(secret) if p in text)


def test_the_token_inside_api_data_never_shows_not_even_a_piece(hostile, tmp_path):
    # Names, labels and devices that carry pieces of the token: the fleet module's result.
    args = {"volumes": [{"host": "web-01", "name": "kbv3-web-01-data", "size": 10, "server": "web-01"}],
            "deletions": [{"host": "web-01", "id": 5, "expect": {"id": 5, "name": "vol-old", "server": "web-01"}}],
            "api_endpoint": hostile.url("tokendata"), "api_token": SECRET, "wait_timeout": 30,
            "_ansible_check_mode": True}
    proc = run_module(args, tmp_path, env={"HCLOUD_TOKEN": "", **FAST}, module="kbv3_volumes")
    assert hostile.requests, "the endpoint served its data"
    result = json.loads(proc.stdout)
    assert "web-01" in result["hosts"] and result["hosts"]["web-01"]["stale"], result
    assert "name vol-old expected, found vol-***" in proc.stdout, "the stale message names the volume, masked"
    assert shows_a_piece(proc.stdout + proc.stderr) == []
    # The PH3-01 snapshot, printed and written.
    snap = tmp_path / "snap.json"
    proc = run([str(INVENTORY), "existing", "--json", "--output", str(snap)],
               env={"HCLOUD_TOKEN": SECRET, "HCLOUD_ENDPOINT": hostile.url("tokendata"), **FAST})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(snap.read_text())["volumes"][0]["id"] == 5, "positive control: the snapshot holds the volume"
    assert shows_a_piece(proc.stdout + proc.stderr + snap.read_text()) == []


def test_a_padded_redirect_shows_no_piece_of_the_token(hostile, tmp_path):
    r = module({"id": 7, "state": "absent", "api_endpoint": hostile.url("redirect"), "wait_timeout": 30}, tmp_path)
    assert r["failed"] and "a redirect to https://elsewhere.example/ppp" in r["msg"], r["msg"]
    assert shows_a_piece(json.dumps(r)) == []


def test_a_device_where_the_diff_should_be_is_refused_at_once(sim, tmp_path):
    base = {"api_token": sim.token, "api_endpoint": sim.endpoint, "confirm": "0123456789ab",
            "deletions": [{"host": "minio-01", "id": 104011392}]}
    proc = run_module({**base, "diff_file": "/dev/zero"}, tmp_path, module="kbv3_volumes")
    r = json.loads(proc.stdout)
    assert r["failed"] and r["failure"]["code"] == "invalid_argument", r
    assert "/dev/zero" in r["msg"] and "not a regular file (a character device)" in r["msg"], r["msg"]
    assert sim.requests() == []
    # The inventory refuses it the same way.
    listed = run([str(INVENTORY), "--list"], env={"KBV3_DIFF_FILE": "/dev/zero"})
    assert listed.returncode == 1 and "not a regular file (a character device)" in listed.stderr, listed.stderr
    # So are the fleet files.
    listed = run([str(INVENTORY), "--list"], env={"KBV3_SERVERS_FILE": "/dev/zero"})
    assert listed.returncode == 1 and "/dev/zero" in listed.stderr and "not a regular file" in listed.stderr, listed.stderr
    # Positive control: a regular file is read (and refused for what it says, not for what it is).
    junk = tmp_path / "diff.json"
    junk.write_text("{}")
    r = json.loads(run_module({**base, "diff_file": str(junk)}, tmp_path, module="kbv3_volumes").stdout)
    assert r["failed"] and "not a valid PH3-01 diff" in r["msg"], r["msg"]
