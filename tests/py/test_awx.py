"""kbv3 as AWX / AAP runs it: ansible-runner private data dirs laid out as AWX
lays them out (project/, inventory/hosts, env/extravars, env/envvars,
env/settings), the inventory synced from the project's awx/fleet.kbv3.yml
with the kbv3.hcloud.fleet plugin, the token injected by the shipped
credential type, the PH3-02 code typed into the shipped survey. PH3-01 then
PH3-02, from this repository's playbooks and from the installed collection,
against hcloud-sim. No AWX server runs here: what AWX does around
ansible-runner is emulated in this file, each step named after AWX's own."""
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import pytest
import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from conftest import ROOT, VENV_BIN
from fleetlib import API_STAGE, Fleet, confirmation_code
from test_collection import installed  # noqa: F401  (the tarball `make collection` built, installed once)

AWX = ROOT / "awx"
# A small fleet: a server with a legacy volume, one in hel1, one without a
# legacy volume; the seed's other servers are outside the fleet.
HOSTS = ["db-postgres-01", "mail-mx-01", "builder-01"]
# The job templates' playbooks: the repository's own, or wrappers in a
# project that uses the installed collection (AWX cannot select a playbook
# inside a collection).
PLAYBOOKS = {"repository": ("playbooks/ph3-01.yml", "playbooks/ph3-02.yml"),
             "collection": ("ph3_01.yml", "ph3_02.yml")}
WRAPPER = """---
- name: {what} from the kbv3.hcloud collection
  ansible.builtin.import_playbook: kbv3.hcloud.{name}
"""
# What AWX sets for every inventory sync (awx/main/constants.py).
STANDARD_INVENTORY_UPDATE_ENV = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_INVENTORY_EXPORT": "True",
                                 "ANSIBLE_VERBOSE_TO_STDERR": "True", "ANSIBLE_HOST_PATTERN_MISMATCH": "error"}
# The inventory source's "Environment variables" (source_vars), as README says.
SOURCE_VARS = {"ANSIBLE_INVENTORY_ENABLED": "kbv3.hcloud.fleet"}
# Host variables for every host: the servers are not reachable from this
# test, so only the API side of PH3-02 runs. (Host variables, since the
# project's playbooks/group_vars/all.yml beats an inventory's or a group's
# variables in Ansible's precedence.)
HOST_VARIABLES = {"kbv3_host_side": False}


class SurveyRefused(Exception):
    pass


def survey_answers(spec, answers):
    """The extra vars AWX makes of answers to a job template's survey, with
    its checks (a required question left empty blocks the launch; a text
    answer must be a string within min..max characters)."""
    extra = {}
    for q in spec["spec"]:
        value = answers.get(q["variable"], q.get("default", ""))
        if value in (None, ""):
            if q["required"]:
                raise SurveyRefused(f"'{q['question_name']}' ({q['variable']}) is required")
            continue
        if q["type"] in ("text", "textarea", "password"):
            if not isinstance(value, str) or not q.get("min", 0) <= len(value) <= q.get("max", 1024):
                raise SurveyRefused(f"{q['variable']}: {value!r} is not text of "
                                    f"{q.get('min')} to {q.get('max')} characters")
        extra[q["variable"]] = value
    return extra


def inject(credential_type, inputs):
    """The environment AWX injects for a credential of this custom type:
    each `injectors.env` template rendered (sandboxed Jinja) over the inputs."""
    fields = {f["id"] for f in credential_type["inputs"]["fields"]}
    missing = [f for f in credential_type["inputs"].get("required", []) if f not in inputs]
    assert not missing and set(inputs) <= fields, f"inputs {sorted(inputs)} do not fit fields {sorted(fields)}"
    jinja = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    return {name: jinja.from_string(template).render(**inputs)
            for name, template in credential_type["injectors"]["env"].items()}


def token_pieces(token, n=8):
    return {token[i:i + n] for i in range(len(token) - n + 1)}


def leaks(files, token):
    """(file, piece) for every 8-character piece of the token in these files."""
    pieces = token_pieces(token)
    return [(f.name, p) for f in files for p in pieces if p in f.read_text(errors="replace")]


class Job:
    """One ansible-runner run's artifacts (artifacts/<ident>/)."""

    def __init__(self, artifacts):
        self.dir = artifacts
        self.status = (artifacts / "status").read_text().strip()
        self.rc = int((artifacts / "rc").read_text())
        self.stdout = (artifacts / "stdout").read_text(errors="replace")
        files = sorted((artifacts / "job_events").glob("*.json"), key=lambda f: int(f.name.split("-", 1)[0]))
        self.event_files = files
        self.events = [json.loads(f.read_text()) for f in files]

    def artifact_data(self):
        """set_stats data, as AWX reads it: the playbook_on_stats event's artifact_data."""
        stats = [e for e in self.events if e["event"] == "playbook_on_stats"]
        assert len(stats) == 1, f"{len(stats)} playbook_on_stats events in {self.dir}"
        return stats[0]["event_data"].get("artifact_data", {})

    def results(self, task):
        return [e["event_data"]["res"] for e in self.events
                if e["event"] in ("runner_on_ok", "runner_on_failed") and e["event_data"].get("task") == task]

    def why(self):
        return f"{self.dir.name}: status {self.status}, rc {self.rc}\n{self.stdout[-6000:]}"


class AwxEmulation:
    """A project as AWX copies it for a job, an inventory synced from it, and
    ansible-runner runs in one private data dir (in AWX each job has its own,
    under /runner in the same execution environment, so paths agree)."""

    def __init__(self, tmp, fleet, collections, kind):
        self.fleet, self.kind = fleet, kind
        self.pdd = tmp / "awx_job"
        self.project = self.pdd / "project"
        # The persistent storage mounted in the execution environment
        # (/var/lib/kbv3 in awx/fleet.kbv3.yml): outside the project copy.
        self.state = tmp / "persistent" / "kbv3"
        self.state.mkdir(parents=True)
        (self.pdd / "inventory").mkdir(parents=True)
        (self.pdd / "env").mkdir()
        self.project.mkdir()
        if kind == "repository":
            shutil.copy(ROOT / "ansible.cfg", self.project)
            shutil.copytree(ROOT / "playbooks", self.project / "playbooks")
            (self.project / "library").mkdir()
            for f in (ROOT / "library").iterdir():
                shutil.copy2(f, self.project / "library" / f.name)
        else:
            for name, what in (("ph3_01", "PH3-01"), ("ph3_02", "PH3-02")):
                (self.project / f"{name}.yml").write_text(WRAPPER.format(what=what, name=name))
        (self.project / "servers").mkdir()
        for name in ("servers_v3.tsv", "volume_rules_v3.tsv"):
            shutil.copy(fleet.fleet / name, self.project / "servers" / name)
        config = yaml.safe_load((AWX / "fleet.kbv3.yml").read_text())
        assert config["plugin"] == "kbv3.hcloud.fleet" and config["state_dir"] == "/var/lib/kbv3", config
        config["state_dir"] = str(self.state)  # where this machine's "mount" is
        (self.project / "awx").mkdir()
        self.config = self.project / "awx" / "fleet.kbv3.yml"
        self.config.write_text(yaml.safe_dump(config))
        # The execution environment: the venv's ansible and ansible-runner,
        # the collection installed; nothing of the caller's ANSIBLE_*/HCLOUD_*.
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "HCLOUD_", "KBV3_"))}
        self.base_env.update(PATH=f"{VENV_BIN}:{os.environ['PATH']}", ANSIBLE_COLLECTIONS_PATH=str(collections),
                             ANSIBLE_NOCOLOR="1", ANSIBLE_HOME=str(tmp / "ansible-home"),
                             ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"))
        # The credential of the shipped type, injected as AWX does.
        credential_type = yaml.safe_load((AWX / "credential_type_hcloud.yml").read_text())
        self.credential_env = inject(credential_type, {"hcloud_token": fleet.sim.token})
        # The simulator instead of api.hetzner.cloud, and quick polling.
        self.job_env = {**self.credential_env, "HCLOUD_ENDPOINT": fleet.sim.endpoint,
                        "KBV3_POLL_INTERVAL_MS": "20", "KBV3_RETRY_BASE_MS": "50"}
        self.jobs = []

    def sync(self, cwd=None):
        """The inventory source's update: `ansible-inventory --list --export`
        on the project's config, then the job's inventory as AWX writes it
        (an executable inventory/hosts printing what the sync imported, with
        HOST_VARIABLES on every host)."""
        env = {**self.base_env, **STANDARD_INVENTORY_UPDATE_ENV, **self.credential_env, **SOURCE_VARS}
        if (self.project / "ansible.cfg").exists():
            env["ANSIBLE_CONFIG"] = str(self.project / "ansible.cfg")  # AWX runs the sync in the project
        # AWX runs the sync from the project's root; the config's relative
        # fleet_dir is relative to the config's folder all the same.
        proc = subprocess.run([str(VENV_BIN / "ansible-inventory"), "--list", "--export", "-i", str(self.config),
                               "--playbook-dir", str(self.config.parent)], cwd=cwd or self.project, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"inventory sync failed:\n{proc.stderr}"
        data = json.loads(proc.stdout)
        for hostvars in data["_meta"]["hostvars"].values():
            hostvars.update(HOST_VARIABLES)
        script = self.pdd / "inventory" / "hosts"
        script.write_text(f"#!/usr/bin/env python3\nprint({json.dumps(json.dumps(data))})\n")
        script.chmod(0o700)
        return data

    def run(self, ident, playbook, extravars):
        """`ansible-runner run` on the private data dir, as AWX's worker does."""
        env_dir = self.pdd / "env"
        (env_dir / "extravars").write_text(json.dumps(extravars))
        (env_dir / "envvars").write_text(json.dumps(self.job_env))
        (env_dir / "settings").write_text(json.dumps({"job_timeout": 300, "idle_timeout": 120}))
        # In a PID namespace of its own: ansible-runner starts ansible-playbook
        # in a new session (pexpect), so a process group would not hold the
        # tree; when the namespace's first process dies, the kernel kills the rest.
        cmd = ["unshare", "--pid", "--fork", "--kill-child", "--",
               str(VENV_BIN / "ansible-runner"), "run", str(self.pdd), "-p", playbook, "--ident", ident]
        proc = subprocess.Popen(cmd, env=self.base_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=360)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"ansible-runner run {ident} did not finish within 360 s (its job_timeout is 300 s)")
        artifacts = self.pdd / "artifacts" / ident
        assert (artifacts / "status").exists(), (
            f"ansible-runner wrote no status for {ident} ({proc.returncode}):\n{out}\n{err}")
        job = Job(artifacts)
        assert proc.returncode == job.rc, (proc.returncode, job.rc)
        self.jobs.append(job)
        return job


@pytest.fixture
def small_fleet(tmp_path):
    f = Fleet(tmp_path, block_devices=False, hosts=HOSTS)
    yield f
    f.cleanup()


@pytest.mark.parametrize("kind", sorted(PLAYBOOKS))
def test_awx_plan_publishes_the_code_and_apply_needs_it_typed(kind, tmp_path, small_fleet, installed):  # noqa: F811
    fleet, sim = small_fleet, small_fleet.sim
    awx = AwxEmulation(tmp_path, fleet, installed, kind)
    ph3_01, ph3_02 = PLAYBOOKS[kind]
    synced = awx.sync()
    assert sorted(synced["kbv3"]["children"]) and "kbv3_fleet" in synced["all"]["vars"]

    # PH3-01, the workflow's first node.
    plan = awx.run("plan", ph3_01, {})
    assert (plan.status, plan.rc) == ("successful", 0), plan.why()
    artifacts = plan.artifact_data()
    diff_file = awx.state / "volume_diff_v3.json"
    assert artifacts == {"kbv3_confirmation_code": confirmation_code(diff_file), "kbv3_diff_file": str(diff_file)}
    assert "kbv3_confirm_destroy" not in artifacts, "the code must never be filled in for the human"
    assert not sim.mutating(), "PH3-01 changed something"
    diff = json.loads(diff_file.read_text())
    to_delete = {v["id"] for v in diff["volumes_to_delete"]}
    to_create = {v["volume_name"] for v in diff["volumes_to_create"]}
    assert to_delete and to_create, "the fleet must have something to delete and to create"
    code = artifacts["kbv3_confirmation_code"]

    # PH3-02 as the workflow's node after the approval: it receives the
    # plan's artifacts as extra vars, and no typed code. It must refuse.
    awx.sync()  # "update on launch": the inventory now carries the new diff
    node = awx.run("apply-from-workflow", ph3_02, dict(artifacts))
    assert (node.status, node.rc != 0) == ("failed", True), node.why()
    assert "Nothing was changed" in node.stdout and code in node.stdout, node.why()
    assert not sim.mutating(), "PH3-02 changed something without the typed code"

    # The survey: nothing but the 12-character code goes through.
    spec = json.loads((AWX / "survey_ph3_02.json").read_text())
    for refused in ({}, {"kbv3_confirm_destroy": ""}, {"kbv3_confirm_destroy": "true"}):
        with pytest.raises(SurveyRefused):
            survey_answers(spec, refused)

    # PH3-02 launched by a person who typed the code into the survey.
    awx.sync()
    # The job template's extra vars turn the host side off (as README suggests
    # for settings), on top of the host variables: an extra var of that name
    # must not reach PH3-02's own bookkeeping.
    apply = awx.run("apply", ph3_02, {"kbv3_host_side": False,
                                      **survey_answers(spec, {"kbv3_confirm_destroy": code})})
    assert (apply.status, apply.rc) == ("successful", 0), apply.why()
    deleted = {int(r["path"].rsplit("/", 1)[1]) for r in sim.mutating() if r["method"] == "DELETE"}
    assert deleted == to_delete
    volumes, _ = fleet.volumes()
    for name in to_create:
        assert volumes[name].server is not None, f"{name} was not created and attached"
    assert not any(v.id in to_delete for v in volumes.values())

    # The job events carry the API stage's result, the way AWX shows it.
    stages = apply.results(API_STAGE)
    assert len(stages) == 1, f"{len(stages)} results of the task '{API_STAGE}' in the job events"
    stage = stages[0]
    assert stage["changed"] and stage["totals"]["deleted"] == len(to_delete), stage["totals"]
    assert set(HOSTS) <= set(stage["hosts"])
    # The journal and the report are on the persistent storage, none of the
    # state in the project copy (which AWX deletes after the job).
    report = json.loads((awx.state / "ph3_02_report.json").read_text())
    assert [r["confirmation_code"] for r in report] == [code]
    assert sorted(p.name for p in (awx.project / "servers").iterdir()) == ["servers_v3.tsv", "volume_rules_v3.tsv"]

    # The token: never in any job event of any of the three jobs, nor in the
    # artifacts. The `command` artifact holds the job's whole environment by
    # design, so it is the scan's positive control.
    events = [f for job in awx.jobs for f in job.event_files]
    assert len(events) > 30
    assert leaks(events, sim.token) == []
    assert leaks([plan.dir / "command"], sim.token), "the scan must find the token where it is"
    assert not any(p in json.dumps(job.artifact_data()) for job in awx.jobs for p in token_pieces(sim.token))


@pytest.mark.parametrize("case", ["the file's code", "another code", "no code"])
def test_awx_plan_publishes_only_the_code_of_the_file_it_wrote(case, tmp_path, small_fleet, installed):  # noqa: F811
    """PH3-01 checks the code it printed against the diff file's bytes before
    publishing it; a stand-in kbv3_inventory prints what each case needs."""
    awx = AwxEmulation(tmp_path, small_fleet, installed, "repository")
    awx.sync()
    diff = awx.state / "volume_diff_v3.json"
    content = "{}\n"
    right = hashlib.sha256(content.encode()).hexdigest()[:12]
    printed = {"the file's code": f"wrote {diff}\nconfirmation code: {right}",
               "another code": f"wrote {diff}\nconfirmation code: 000000000000",
               "no code": f"wrote {diff}"}[case]
    fake = tmp_path / "fake_kbv3_inventory"
    fake.write_text(f"#!{sys.executable}\nimport pathlib, sys\nif sys.argv[1] == 'diff':\n"
                    f"    pathlib.Path({str(diff)!r}).write_text({content!r})\n    print({printed!r})\n"
                    f"else:\n    print(sys.argv[1], 'done')\n")
    fake.chmod(0o755)
    plan = awx.run("plan", PLAYBOOKS["repository"][0], {"kbv3_inventory_bin": str(fake)})
    if case == "the file's code":
        assert (plan.status, plan.rc) == ("successful", 0), plan.why()
        assert plan.artifact_data() == {"kbv3_confirmation_code": confirmation_code(diff), "kbv3_diff_file": str(diff)}
        return
    assert plan.status == "failed" and plan.artifact_data() == {}, plan.why()
    why = {"another code": f"{diff} does not have the code kbv3_inventory printed (000000000000)",
           "no code": "kbv3_inventory diff did not print the path of the diff and its confirmation code"}[case]
    assert why in " ".join(plan.stdout.split()), plan.why()


def test_awx_inventory_source_from_the_project_root(tmp_path, small_fleet, installed):  # noqa: F811
    """The sync exactly as AWX runs it: from the project's root."""
    awx = AwxEmulation(tmp_path, small_fleet, installed, "repository")
    synced = awx.sync(cwd=awx.project)
    assert sorted(synced["_meta"]["hostvars"]) == sorted(HOSTS)


def test_awx_files_fit_what_awx_accepts():
    """The credential type, the survey and the inventory config, checked
    against AWX's rules for them."""
    ct = yaml.safe_load((AWX / "credential_type_hcloud.yml").read_text())
    assert ct["kind"] in ("cloud", "net")  # the only kinds of a custom type
    (field,) = ct["inputs"]["fields"]
    assert field["secret"] is True and ct["inputs"]["required"] == [field["id"]]
    env = ct["injectors"]["env"]
    assert set(ct["injectors"]) == {"env"}, "an extra_vars injector would not reach inventory syncs"
    assert list(env) == ["HCLOUD_TOKEN"] and not any(k.startswith("ANSIBLE_") for k in env)
    assert inject(ct, {"hcloud_token": "abc"}) == {"HCLOUD_TOKEN": "abc"}
    spec = json.loads((AWX / "survey_ph3_02.json").read_text())
    assert {"name", "description", "spec"} <= set(spec)
    (q,) = spec["spec"]
    assert (q["variable"], q["required"], q["type"]) == ("kbv3_confirm_destroy", True, "text")
    assert survey_answers(spec, {"kbv3_confirm_destroy": "0123456789ab"}) == {"kbv3_confirm_destroy": "0123456789ab"}
    config = yaml.safe_load((AWX / "fleet.kbv3.yml").read_text())
    assert config["plugin"] == "kbv3.hcloud.fleet" and pathlib.Path(config["state_dir"]).is_absolute()
    assert (AWX / config["fleet_dir"] / "servers_v3.tsv").is_file()
