"""The execution environment (execution-environment.yml): `ansible-builder
create` writes the image's build context (no container engine is needed, and
none is run: the image itself is not built here), and the context's galaxy
stage is replayed on this machine: the collection installs from the context
as the Containerfile installs it, and ansible-builder's own introspection
finds that kbv3.hcloud asks for no Python or system package."""
import json
import os
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from conftest import ROOT, VENV_BIN

VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
TARBALL = ROOT / f"kbv3-hcloud-{VERSION}.tar.gz"
EE = ROOT / "execution-environment.yml"
SITE = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))


def pinned(package):
    """The version requirements.txt pins for a Python package."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"requirements.txt pins no {package}")


def bundled(fqcn):
    """The version of a collection in the venv's ansible package (what the tests run)."""
    namespace, name = fqcn.split(".")
    manifest = SITE / "ansible_collections" / namespace / name / "MANIFEST.json"
    return json.loads(manifest.read_text())["collection_info"]["version"]


def quiet_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "HCLOUD_", "KBV3_"))}
    env.update(PATH=f"{VENV_BIN}:{os.environ['PATH']}", ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1")
    return env


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """`ansible-builder create` into a temporary folder; returns that folder."""
    assert TARBALL.exists(), f"{TARBALL.name} is missing: `make collection` builds it (make test does)"
    tmp = tmp_path_factory.mktemp("ee")
    out = tmp / "context"
    proc = subprocess.run([str(VENV_BIN / "ansible-builder"), "create", "-f", str(EE), "-c", str(out),
                           "--output-filename", "Containerfile"], cwd=tmp, env=quiet_env(tmp), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"ansible-builder create failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Complete! The build context can be found at" in proc.stdout, proc.stdout
    return out


def test_the_definition_pins_what_the_tests_run():
    ee = yaml.safe_load(EE.read_text())
    assert ee["version"] == 3
    deps = ee["dependencies"]
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={pinned('ansible-core')}"
    assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={pinned('ansible-runner')}"
    collections = {c["name"]: c for c in deps["galaxy"]["collections"]}
    tarball = collections.pop(f"collections/{TARBALL.name}", None)
    assert tarball == {"name": f"collections/{TARBALL.name}", "type": "file"}, (
        f"execution-environment.yml must install collections/{TARBALL.name} (Cargo.toml's version is {VERSION}); "
        f"it lists {sorted(c['name'] for c in deps['galaxy']['collections'])}")
    # The collection's dependencies (galaxy.yml), at the versions the tests use.
    assert {n: c["version"] for n, c in collections.items()} == {n: bundled(n) for n in ("ansible.posix",
                                                                                         "community.general")}
    assert ee["additional_build_files"] == [{"src": TARBALL.name, "dest": "collections"}]


def test_ansible_builder_create_writes_the_build_context(context):
    containerfile = (context / "Containerfile").read_text()
    base = yaml.safe_load(EE.read_text())["images"]["base_image"]["name"]
    assert f'ARG EE_BASE_IMAGE="{base}"' in containerfile
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1).split()
    assert refs == [f"ansible-core=={pinned('ansible-core')}", f"ansible-runner=={pinned('ansible-runner')}"]
    # The galaxy stage: the context's _build becomes the working directory,
    # where the relative name collections/<tarball> resolves.
    galaxy = containerfile[containerfile.index("AS galaxy"):containerfile.index("AS builder")]
    assert "COPY _build /build" in galaxy and "WORKDIR /build" in galaxy
    assert re.search(r"ansible-galaxy collection install .*-r requirements\.yml", galaxy), galaxy
    assert containerfile.rstrip().endswith('CMD ["bash"]') and "USER 1000" in containerfile
    # The tarball `make collection` built, byte for byte, and the requirements.
    copied = context / "_build" / "collections" / TARBALL.name
    assert copied.read_bytes() == TARBALL.read_bytes()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements == {"collections": yaml.safe_load(EE.read_text())["dependencies"]["galaxy"]["collections"]}
    assert (context / "_build" / "scripts" / "introspect.py").is_file()


def test_the_galaxy_stage_installs_the_collection_and_it_needs_nothing_else(context, tmp_path):
    """The Containerfile's galaxy stage, replayed here (offline: the
    collection's dependencies come from Galaxy in a real build, so this
    installs only the file entries), then the builder stage's introspection."""
    build = context / "_build"
    files = {"collections": [c for c in yaml.safe_load((build / "requirements.yml").read_text())["collections"]
                             if c.get("type") == "file"]}
    offline = tmp_path / "requirements-files.yml"
    offline.write_text(yaml.safe_dump(files))
    target = tmp_path / "usr-share-ansible-collections"
    proc = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-r", str(offline),
                           "--collections-path", str(target)], cwd=build, env=quiet_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = target / "ansible_collections" / "kbv3" / "hcloud"
    for name in ("execution-environment.yml", "ee-requirements.txt", "ee-bindep.txt"):
        assert (installed / "meta" / name).is_file(), f"meta/{name} is not in {TARBALL.name}"
    assert os.access(installed / "plugins" / "modules" / "volume", os.X_OK)

    def introspect(folder):
        proc = subprocess.run([str(VENV_BIN / "python"), str(build / "scripts" / "introspect.py"), "introspect",
                               str(folder)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return yaml.safe_load(proc.stdout)

    assert introspect(target) == {"python": [], "system": []}
    # Positive control: the same collection with one requirement in each of
    # its meta files has them found, so the empty answer above is the files'.
    control = tmp_path / "control"
    shutil.copytree(target, control, symlinks=True)
    meta = control / "ansible_collections" / "kbv3" / "hcloud" / "meta"
    (meta / "ee-requirements.txt").write_text("requests>=2.31\n")
    (meta / "ee-bindep.txt").write_text("xfsprogs [platform:rpm]\n")
    found = introspect(control)
    assert any(line.startswith("requests>=2.31") for line in found["python"]), found
    assert any(line.startswith("xfsprogs") for line in found["system"]), found
