"""kbv3_volume through the real ansible-playbook against hcloud-sim."""
import json
import subprocess

import pytest
import yaml

from conftest import ROOT, play, run

MUTATING = {"POST", "PUT", "DELETE"}


def vol(**args):
    return {"kbv3_volume": args}


def mutating(sim):
    return [r for r in sim.requests() if r["method"] in MUTATING]


def test_create_then_rerun_changes_nothing(sim, tmp_path):
    task = vol(name="kbv3-builder-01-data", size=20, server="builder-01", format="ext4",
               labels={"role_v3": "builder", "managed-by": "kbv3"})
    first = play(sim, [task], tmp_path)
    assert first.rc == 0, first.stdout
    r = first[0]
    assert r["changed"] is True
    v = r["volume"]
    assert (v["server_name"], v["size"], v["format"], v["status"]) == ("builder-01", 20, "ext4", "available")
    assert v["linux_device"] == f"/dev/disk/by-id/scsi-0HC_Volume_{v['id']}"
    posts = [x for x in mutating(sim)]
    assert [x["route"] for x in posts] == ["/volumes"], "create with server is one POST"
    before = len(sim.requests())
    second = play(sim, [task], tmp_path)
    assert second[0]["changed"] is False
    assert second[0]["msg"] == f"volume kbv3-builder-01-data ({v['id']}) is as requested (no change)"
    rerun = sim.requests()[before:]
    assert [x for x in rerun if x["method"] in MUTATING] == []
    assert len(rerun) <= 2, rerun


CHECK_CASES = [
    ("create", vol(name="kbv3-siem-01-data", size=50, server="siem-01"),
     ["create kbv3-siem-01-data (50 GB) in nbg1, attached to siem-01"], {"server_name": "siem-01", "id": None}),
    ("grow", vol(name="vol-minio-01", size=150),
     ["resize vol-minio-01 (104011392) from 100 GB to 150 GB"], {"size": 150}),
    ("labels", vol(name="vol-minio-01", labels={"a": "b"}),
     ["set labels of vol-minio-01 (104011392) to {a=b}"], {"labels": {"a": "b"}}),
    ("protect", vol(name="vol-minio-01", delete_protection=True),
     ["enable delete protection of vol-minio-01 (104011392)"], {"delete_protection": True}),
    ("move", vol(name="vol-minio-01", server="minio-02", move=True),
     ["detach vol-minio-01 (104011392) from minio-01", "attach vol-minio-01 (104011392) to minio-02"], {"server_name": "minio-02"}),
    ("detach", vol(name="vol-minio-01", state="detached"),
     ["detach vol-minio-01 (104011392) from minio-01"], {"server": None}),
    ("absent", vol(name="vol-minio-01", state="absent"),
     ["detach vol-minio-01 (104011392) from minio-01", "delete vol-minio-01 (104011392)"], None),
]


@pytest.mark.parametrize("case,task,actions,predicted", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_check_mode_predicts_and_sends_only_gets(sim, tmp_path, case, task, actions, predicted):
    result = play(sim, [task], tmp_path, check=True, diff=True)
    r = result[0]
    assert result.rc == 0 and r["changed"] is True
    assert r["actions"] == actions
    if predicted is None:
        assert r["volume"] is None and r["diff"]["after"] == {}
    else:
        for k, want in predicted.items():
            assert r["volume"][k] == want, (k, r["volume"])
    assert r["diff"]["before"] != r["diff"]["after"]
    assert mutating(sim) == []


def test_diff_output_is_shown(sim, tmp_path):
    result = play(sim, [vol(name="vol-minio-01", size=150, labels={"tier": "hot"})], tmp_path,
                  check=True, diff=True, structured=False)
    assert result.rc == 0
    out = result.stdout
    assert "--- before: volume vol-minio-01 (104011392) (before)" in out
    assert "+++ after: volume vol-minio-01 (104011392) (after)" in out
    assert "-    size: 100\n" in out and "+    size: 150\n" in out
    assert "-        generation: v2\n" in out and "+        tier: hot\n" in out
    assert mutating(sim) == []


def test_grow_shrink_labels_protection_and_move(sim, tmp_path):
    tasks = [
        {**vol(name="vol-minio-01", size=120), "register": "grow"},
        {**vol(name="vol-minio-01", size=50), "register": "shrink", "ignore_errors": True},
        {**vol(name="vol-minio-01", labels={"tier": "hot", "n": 3}), "register": "labels"},
        {**vol(name="vol-minio-01", delete_protection=True), "register": "protect"},
        {**vol(name="vol-minio-01", delete_protection=False), "register": "unprotect"},
        {**vol(name="vol-minio-01", server="minio-02"), "register": "move_refused", "ignore_errors": True},
        {**vol(name="vol-minio-01", server="minio-02", move=True), "register": "moved"},
    ]
    # minio-02 has its own legacy volume; moving one more there is allowed (up to 16).
    r = play(sim, tasks, tmp_path)
    grow, shrink, labels, protect, unprotect, refused, moved = r.tasks
    assert grow["volume"]["size"] == 120
    assert shrink["failed"] and shrink["msg"].startswith(
        "cannot shrink volume vol-minio-01 (104011392) from 120 GB to 50 GB: Hetzner volumes only grow")
    assert labels["volume"]["labels"] == {"tier": "hot", "n": "3"}
    assert protect["volume"]["delete_protection"] is True and unprotect["volume"]["delete_protection"] is False
    assert refused["failed"] and "set move: true" in refused["msg"]
    assert moved["changed"] and moved["volume"]["server_name"] == "minio-02"
    failed_requests = [x for x in sim.requests() if x["status"] >= 400]
    assert failed_requests == [], "refusals are decided before any request"


def test_absent_protected_and_stale_plans(sim, tmp_path):
    tasks = [
        {**vol(name="vol-haproxy-01", delete_protection=True)},
        {**vol(name="vol-haproxy-01", state="absent"), "register": "protected", "ignore_errors": True},
        {**vol(name="vol-haproxy-02", state="absent", expect={"id": 104011393, "server": "haproxy-01"}),
         "register": "stale", "ignore_errors": True},
        {**vol(name="vol-haproxy-02", state="absent", expect={"id": 104011393, "name": "vol-haproxy-02", "server": "haproxy-02"}),
         "register": "deleted"},
        {**vol(name="vol-haproxy-02", state="absent"), "register": "again"},
    ]
    r = play(sim, tasks, tmp_path)
    _, protected, stale, deleted, again = r.tasks
    assert protected["failed"] and "is delete-protected, so it was not deleted (nor detached)" in protected["msg"]
    assert stale["failed"] and stale["msg"].startswith(
        "the plan is stale for volume vol-haproxy-02 (104011393): attached to haproxy-01 expected, found attached to haproxy-02")
    assert deleted["actions"] == ["detach vol-haproxy-02 (104011393) from haproxy-02", "delete vol-haproxy-02 (104011393)"]
    assert again["changed"] is False
    routes = [(x["method"], x["path"]) for x in mutating(sim)]
    assert ("POST", "/v1/volumes/104011394/actions/detach") not in routes, "the protected volume was not detached"
    assert routes[1:] == [("POST", "/v1/volumes/104011393/actions/detach"), ("DELETE", "/v1/volumes/104011393")]


BAD_ARGS = [
    ("unknown option", {"name": "x", "colour": "red"}, "Unsupported parameters for (kbv3_volume) module: colour. Supported parameters include:"),
    ("size abc", {"name": "x", "size": "abc"}, "argument 'size': 'abc' is not an integer"),
    ("size 5", {"name": "x", "size": 5}, "argument 'size': must be between 10 and 10240 (GB), got 5"),
    ("no name or id", {"size": 10}, "one of the following is required: name, id"),
    ("state gone", {"name": "x", "state": "gone"}, "argument 'state': value must be one of: present, detached, absent, got: gone"),
    ("unknown server", {"name": "x", "size": 10, "server": "nope-01"}, "server 'nope-01' not found in the project"),
]


@pytest.mark.parametrize("case,args,message", BAD_ARGS, ids=[c[0] for c in BAD_ARGS])
def test_bad_arguments_fail_clearly(sim, tmp_path, case, args, message):
    r = play(sim, [vol(**args)], tmp_path)
    assert r.rc != 0
    assert r[0]["failed"] is True
    assert r[0]["msg"].startswith(message), r[0]["msg"]
    assert "Traceback" not in r.stdout and "panicked" not in r.stdout


def test_transient_faults_are_survived(start_sim, tmp_path):
    sim = start_sim("--faults", "429=0.1,409=0.1,502=0.1,504=0.1", "--fault-seed", "11")
    r = play(sim, [vol(name="kbv3-vault-01-data", size=20, server="vault-01"),
                   vol(name="vol-vault-01", state="absent")], tmp_path)
    assert r.rc == 0, r.stdout
    assert any(x["fault"] for x in sim.requests())
    assert sum(t["api_requests"]["retries"] for t in r.tasks) >= 1


def test_permanent_fault_is_a_clear_failure(start_sim, tmp_path):
    sim = start_sim("--faults", "503=1")
    r = play(sim, [vol(name="vol-vault-01", state="absent")], tmp_path)
    assert r.rc != 0
    assert r[0]["msg"].startswith("cannot read volume vol-vault-01: service is currently not available (unavailable, ")
    assert r[0]["msg"].endswith("(gave up after 3 attempts)")


def test_the_token_never_shows(sim, tmp_path):
    secret = sim.token
    tasks = [
        {**vol(name="kbv3-crm-01-data", size=20, server="crm-01", api_token=secret, api_endpoint=sim.endpoint), "register": "r"},
        {**vol(name="vol-crm-01", state="absent", api_token=secret, api_endpoint=sim.endpoint, size=5),
         "register": "bad", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ r | to_json }}{{ bad | to_json }}", "dest": str(tmp_path / "registered.json")}},
    ]
    result = play(sim, tasks, tmp_path, verbose="-vvv", structured=False, env={"HCLOUD_TOKEN": ""})
    assert result.rc == 0, result.stdout
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in result.stdout
    for text in (result.stdout, result.stderr, (tmp_path / "registered.json").read_text(), sim.request_log.read_text()):
        assert secret not in text


@pytest.mark.parametrize("module", ["kbv3_volume", "kbv3_volumes"])
def test_sidecar_documentation_agrees_with_the_schema(module):
    schema = json.loads(run([str(ROOT / "library" / module), "--schema"], check=True).stdout)
    doc = yaml.safe_load((ROOT / "library" / f"{module}.yml").read_text())["DOCUMENTATION"]["options"]
    props = schema["properties"]
    assert sorted(doc) == sorted(props)
    ansible_types = {"string": "str", "integer": "int", "boolean": "bool", "object": "dict", "array": "list"}

    def resolve(p):
        """Follows $ref/allOf/anyOf to the one non-null schema."""
        if "$ref" in p:
            return resolve(schema["definitions"][p["$ref"].split("/")[-1]])
        for key in ("allOf", "anyOf"):
            if key in p:
                return resolve(next(x for x in p[key] if x.get("type") != "null"))
        if "oneOf" in p:  # an enum whose variants carry their own docs
            return {"type": "string", "enum": [v for alt in p["oneOf"] for v in alt["enum"]]}
        return p

    for name, p in props.items():
        r = resolve(p)
        t = r.get("type", "string")
        t = next(x for x in t if x != "null") if isinstance(t, list) else t
        assert doc[name]["type"] == ansible_types[t], name
        assert doc[name].get("default") == p.get("default"), name
        assert sorted(doc[name].get("choices", [])) == sorted(r.get("enum", [])), name


def test_ansible_doc_renders():
    out = run(["ansible-doc", "-M", "library", "kbv3_volume"], check=True).stdout
    assert "Manage one Hetzner Cloud volume" in out or "Makes one Hetzner Cloud volume" in out
    assert "expect" in out and "wait_timeout" in out
    out = run(["ansible-doc", "-M", "library", "kbv3_volumes"], check=True).stdout
    assert "One task, run once on the controller" in out and "concurrency" in out and "RETURN VALUES" in out


def test_a_failure_midway_reports_what_was_done(start_sim, tmp_path):
    # Every asynchronous action fails; change_protection completes at once, as in the real API.
    sim = start_sim("--faults", "action_error=1")
    tasks = [
        vol(name="vol-haproxy-01", delete_protection=True),
        {**vol(name="vol-haproxy-01", state="absent", delete_protection=False), "register": "r", "ignore_errors": True},
    ]
    r = play(sim, tasks, tmp_path)[1]
    assert r["failed"] is True and r["changed"] is True
    assert r["msg"].startswith("detach vol-haproxy-01 (104011394) from haproxy-01 failed: action detach_volume (")
    assert r["msg"].endswith("Done before the failure: disable delete protection of vol-haproxy-01 (104011394). Rerun the task to finish")
    assert r["failure"]["code"] == "action_failed" and r["failure"]["action_id"] > 0
    assert not any(x["method"] == "DELETE" for x in sim.requests())
