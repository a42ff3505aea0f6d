"""Runner-specific helpers for pack-based end-to-end tests (python/node.js runners, issue 14), on top of
packs_util (write, archive, upload, register): packs of python/node.js actions described as dicts, local wheels and
npm tarballs (no PyPI, no npm registry), and waiting for a pack's environment."""
from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Optional

import packs_util
from attune_e2e import Client, expect

SYSTEM_PYTHON = "/usr/bin/python3"


def build_wheel(out_dir: Path, dist: str, version: str, module_body: str) -> Path:
    """A pure-python wheel `<dist>-<version>` with one module named like the distribution, built offline."""
    src = out_dir.parent / f".src-{out_dir.name}" / f"{dist}-{version}"
    src.mkdir(parents=True, exist_ok=True)
    (src / "setup.py").write_text(f"from setuptools import setup\nsetup(name={dist!r}, version={version!r}, "
                                  f"py_modules=[{dist!r}])\n")
    (src / f"{dist}.py").write_text(module_body)
    subprocess.run([SYSTEM_PYTHON, "-m", "pip", "wheel", "-q", "--no-index", "--no-build-isolation", "--no-deps",
                    "-w", str(out_dir), str(src)], check=True, capture_output=True)
    wheels = list(out_dir.glob(f"{dist}-{version}-*.whl"))
    assert wheels, f"no wheel for {dist} {version} in {out_dir}"
    return wheels[0]


def npm_tarball(out_dir: Path, name: str, version: str, index_js: str) -> str:
    """`npm pack` of a tiny package into out_dir; returns the tarball's file name."""
    src = out_dir / ".src" / f"{name}-{version}"
    src.mkdir(parents=True, exist_ok=True)
    (src / "package.json").write_text(json.dumps({"name": name, "version": version, "main": "index.js"}))
    (src / "index.js").write_text(index_js)
    subprocess.run(["npm", "pack", "--silent", str(src)], cwd=out_dir, check=True, capture_output=True)
    tgz = f"{name}-{version}.tgz"
    assert (out_dir / tgz).exists(), f"npm pack produced no {tgz}"
    return tgz


def write_pack(root: Path, ref: str, actions: dict, files: Optional[dict] = None, version: str = "1.0.0") -> Path:
    """A pack directory: pack.yaml, actions/<name>.yaml + script for each of `actions`
    ({name: {runner_type, entry_point, script, parameters?, output_format? (json), timeout_seconds?}}), plus
    `files` ({relpath: text|bytes})."""
    out = {"pack.yaml": f"ref: {ref}\nlabel: E2E {ref}\nversion: {version}\n"}
    for name, a in actions.items():
        lines = [f"ref: {name}", f"name: {name}", f"runner_type: {a['runner_type']}",
                 f"entry_point: {a['entry_point']}", f"output_format: {a.get('output_format', 'json')}"]
        if a.get("timeout_seconds"):
            lines.append(f"timeout_seconds: {a['timeout_seconds']}")
        if a.get("parameters"):
            lines.append("parameters:")
            for pname, spec in a["parameters"].items():
                lines.append(f"  {pname}:")
                lines.extend(f"    {k}: {json.dumps(v)}" for k, v in spec.items())
        out[f"actions/{name}.yaml"] = "\n".join(lines) + "\n"
        out[f"actions/{a['entry_point']}"] = textwrap.dedent(a["script"]).lstrip()
    out.update(files or {})
    return packs_util.write_pack(root, out)


def upload(api: Client, root: Path, force: bool = False) -> dict:
    """Uploads the directory `root` as it is now (tar.gz, files at the root); returns data {pack, components}."""
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return expect(packs_util.upload(api, packs_util.tar_pack(files), force=force or None), 201)["data"]


def register(api: Client, path: Path, force: bool = False) -> dict:
    return expect(packs_util.register(api, path, force=force or None), 201)["data"]


def environment(api: Client, pack_ref: str) -> Optional[dict]:
    return api.get_data(f"/api/v1/packs/{pack_ref}").get("environment")


def wait_environment(api: Client, pack_ref: str, timeout: float = 100.0) -> Optional[dict]:
    """The pack's `environment` once it is no longer building (None for a pack that needs none)."""
    return packs_util.wait_environment(api, pack_ref, timeout=timeout).get("environment")


def run_action(api: Client, action_ref: str, parameters: Optional[dict] = None, timeout: float = 100.0) -> dict:
    ex = api.execute(action_ref, parameters or {})
    return api.wait_execution(ex["id"], timeout=timeout)
