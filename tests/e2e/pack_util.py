"""Helpers for pack-based end-to-end tests (python/node.js runners, issue 14): pack trees written to disk,
tar.gz uploads (`POST /api/v1/packs/upload`), registration (`POST /api/v1/packs/register`), local wheels and
npm tarballs (no PyPI, no npm registry), and a server started with pip/pack-directory options."""
from __future__ import annotations

import io
import json
import subprocess
import tarfile
import textwrap
from pathlib import Path
from typing import Optional

from attune_e2e import Client, Server, expect, wait_for

SYSTEM_PYTHON = "/usr/bin/python3"


class PackServer(Server):
    """`attune serve` with `--packs-dir` and pip options pointing at local wheels only."""

    def __init__(self, *args, packs_dir: Path, wheels_dir: Path, **kw):
        super().__init__(*args, **kw)
        self.packs_dir = Path(packs_dir)
        self.wheels_dir = Path(wheels_dir)

    def command(self) -> list[str]:
        return super().command() + ["--packs-dir", str(self.packs_dir),
                                    "--pip-find-links", str(self.wheels_dir), "--pip-extra-arg=--no-index"]


def build_wheel(out_dir: Path, dist: str, version: str, module_body: str) -> Path:
    """A pure-python wheel `<dist>-<version>` with one module named like the distribution, built offline."""
    src = out_dir / "src" / f"{dist}-{version}"
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
    ({name: {runner_type, entry_point, script, parameters?, output_format?}}), plus `files` ({relpath: text|bytes})."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pack.yaml").write_text(f"ref: {ref}\nlabel: E2E {ref}\nversion: {version}\n")
    (root / "actions").mkdir(exist_ok=True)
    for name, a in actions.items():
        lines = [f"ref: {name}", f"name: {name}", f"runner_type: {a['runner_type']}",
                 f"entry_point: {a['entry_point']}", f"output_format: {a.get('output_format', 'json')}"]
        if a.get("timeout_seconds"):
            lines.append(f"timeout_seconds: {a['timeout_seconds']}")
        if a.get("parameters"):
            lines.append("parameters:")
            for pname, spec in a["parameters"].items():
                lines.append(f"  {pname}:")
                for k, v in spec.items():
                    lines.append(f"    {k}: {json.dumps(v)}")
        (root / "actions" / f"{name}.yaml").write_text("\n".join(lines) + "\n")
        (root / "actions" / a["entry_point"]).write_text(textwrap.dedent(a["script"]).lstrip())
    for rel, content in (files or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


def tar_gz(root: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(root.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(root)), recursive=False)
    return buf.getvalue()


def upload(api: Client, root: Path, force: bool = False) -> dict:
    """POST /api/v1/packs/upload; returns data {pack, components}."""
    files = {"pack": (f"{root.name}.tar.gz", tar_gz(root), "application/gzip")}
    data = {"force": "true"} if force else {}
    return expect(api.post("/api/v1/packs/upload", files=files, data=data, timeout=60), 201)["data"]


def register(api: Client, path: Path, force: bool = False) -> dict:
    body = {"path": str(path)}
    if force:
        body["force"] = True
    return expect(api.post("/api/v1/packs/register", json=body, timeout=60), 201)["data"]


def environment(api: Client, pack_ref: str) -> Optional[dict]:
    return api.get_data(f"/api/v1/packs/{pack_ref}").get("environment")


def wait_environment(api: Client, pack_ref: str, statuses=("ready", "failed"), timeout: float = 100.0) -> dict:
    """The pack's `environment` once its status is one of `statuses`."""
    return wait_for(lambda: (lambda e: e if e and e.get("status") in statuses else None)(environment(api, pack_ref)),
                    timeout=timeout, interval=0.2, desc=f"environment of {pack_ref} in {statuses}")


def run_action(api: Client, action_ref: str, parameters: Optional[dict] = None, timeout: float = 100.0) -> dict:
    ex = api.execute(action_ref, parameters or {})
    return api.wait_execution(ex["id"], timeout=timeout)
