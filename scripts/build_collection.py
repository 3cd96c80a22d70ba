"""Builds the kbv3.hcloud collection tarball (`make collection`).

Lays the collection out under target/collection/ansible_collections/kbv3/hcloud
from this repository (collection/ holds the collection-only files; modules,
sidecars and playbooks come from library/ and playbooks/, with FQCN module
names), then runs `ansible-galaxy collection build`. The version is
Cargo.toml's.

Usage: build_collection.py X86_64_BIN_DIR AARCH64_BIN_DIR OUTPUT_DIR
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMESPACE, NAME = "kbv3", "hcloud"
# Repository name -> collection name of each module.
MODULES = {"kbv3_volume": "volume", "kbv3_volumes": "volumes"}
# The collection's plugins and docs are GPL-3.0-or-later, as Ansible content
# that runs inside ansible-core; the binaries (and their Rust source) are MIT.
LICENSE_HEADER = ("# Copyright: (c) 2026, kbv3 developers\n"
                  "# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)\n")


def fqcn_text(text):
    """Module and playbook names as the collection spells them: task keys,
    module references in docs (P(), O(), seealso), the sidecar's own name,
    and `playbooks/ph3-02.yml` in messages (`kbv3.hcloud.ph3_02`)."""
    text = re.sub(r"\bplaybooks/ph3-0(\d)\.yml\b", rf"{NAMESPACE}.{NAME}.ph3_0\1", text)
    for repo, short in MODULES.items():
        fq = f"{NAMESPACE}.{NAME}.{short}"
        text = re.sub(rf"^(\s*(?:- )?){repo}:(\s*)$", rf"\g<1>{fq}:\g<2>", text, flags=re.M)
        text = re.sub(rf"\b{repo}#module", f"{fq}#module", text)
        text = re.sub(rf"^(\s*- module:) {repo}$", rf"\1 {fq}", text, flags=re.M)
        text = re.sub(rf"^  module: {repo}$", f"  module: {short}", text, flags=re.M)
        text = re.sub(rf"C\({repo} --schema\)", f"C(plugins/modules/{short} --schema) (in the collection)", text)
    return text


def galaxy_yml(version):
    return f"""---
namespace: {NAMESPACE}
name: {NAME}
version: {version}
readme: README.md
authors:
  - kbv3 developers (@kbv3)
description: >-
  Hetzner Cloud volumes for fleet rebuilds: static binary modules (one volume, or
  every volume of a play in one task within the API's rate-limit budget), guarded
  deletions bound to a reviewed plan, and a fleet inventory plugin.
license:
  - GPL-3.0-or-later
  - MIT
tags: [hetzner, hcloud, cloud, volumes, infrastructure]
# PH3-02's steps on the servers; hetzner.hcloud is optional (group/kbv3.hcloud.all
# extends hetzner.hcloud.all when it is installed).
dependencies:
  ansible.posix: ">=1.5.0"
  community.general: ">=8.0.0"
repository: https://github.com/kbv3/kbv3
documentation: https://github.com/kbv3/kbv3/blob/main/README.md
issues: https://github.com/kbv3/kbv3/issues
build_ignore: []
"""


def install(src, dest, mode=0o644):
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dest.chmod(mode)


def lay_out_binaries(x86_64, aarch64, root):
    """One multi-call binary per architecture, builds/linux-<arch>/kbv3, which
    runs as the tool it is named after; every tool name is a relative symlink
    to it (ansible-galaxy keeps links in the tarball). The module files Ansible
    resolves, plugins/modules/volume and volumes, link to the x86_64 names;
    plugin_utils/platforms.py picks the target's. With no binary file among
    the modules, `ansible-doc -l` has nothing to misread as text."""
    for arch, build in (("x86_64", x86_64), ("aarch64", aarch64)):
        install(build, root / f"builds/linux-{arch}/kbv3", 0o755)
        for tool in ("volume", "volumes", "kbv3_inventory"):
            (root / f"builds/linux-{arch}" / tool).symlink_to("kbv3")
    (root / "plugins/modules").mkdir(parents=True, exist_ok=True)
    for module in MODULES.values():
        (root / "plugins/modules" / module).symlink_to(f"../../builds/linux-x86_64/{module}")


def lay_out(x86_64, aarch64, root):
    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "galaxy.yml").write_text(galaxy_yml(version))
    for src in sorted((ROOT / "collection").rglob("*")):
        if src.is_file() and "__pycache__" not in src.parts:
            install(src, root / src.relative_to(ROOT / "collection"))
    install(ROOT / "LICENSE", root / "LICENSE")
    lay_out_binaries(x86_64 / "kbv3", aarch64 / "kbv3", root)
    for repo, short in MODULES.items():
        sidecar = root / "plugins/modules" / f"{short}.yml"
        sidecar.write_text(LICENSE_HEADER + fqcn_text((ROOT / "library" / f"{repo}.yml").read_text()))
    for src in sorted((ROOT / "playbooks").rglob("*.yml")):
        rel = src.relative_to(ROOT / "playbooks")
        # Collection playbooks are named with underscores: kbv3.hcloud.ph3_02.
        name = rel.name.replace("-", "_") if rel.parent == pathlib.Path(".") else rel.name
        dest = root / "playbooks" / rel.parent / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(fqcn_text(src.read_text()))
    return version


def main():
    x86_64, aarch64, out = (pathlib.Path(a).resolve() for a in sys.argv[1:4])
    root = ROOT / "target/collection/ansible_collections" / NAMESPACE / NAME
    version = lay_out(x86_64, aarch64, root)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(ROOT / ".venv/bin/ansible-galaxy"), "collection", "build", "--force",
                    "--output-path", str(out), str(root)], check=True)
    tarball = out / f"{NAMESPACE}-{NAME}-{version}.tar.gz"
    print(tarball)
    for arch, build in (("x86_64", x86_64), ("aarch64", aarch64)):
        print(f"  kbv3 for {arch}: {(build / 'kbv3').stat().st_size / 1e6:.1f} MB")
    print(f"  tarball: {tarball.stat().st_size / 1e6:.1f} MB (Galaxy refuses more than 20 MB; kbv3 keeps under 8 MB)")


if __name__ == "__main__":
    main()
