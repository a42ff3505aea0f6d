"""Pack helpers for end-to-end tests: write a pack directory, archive it the ways users and tools
do, and install it through the public API (POST /api/v1/packs/upload and /packs/register)."""
from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Optional, Union

import requests

# relative path → text, bytes, or (text|bytes, mode)
Files = dict[str, Union[str, bytes, tuple]]


def _content(spec, rel: str, executable: tuple[str, ...]) -> tuple[bytes, int]:
    data, mode = spec if isinstance(spec, tuple) else (spec, 0o755 if rel in executable else 0o644)
    return (data.encode() if isinstance(data, str) else data), mode


def write_pack(root: Path, files: Files, executable: tuple[str, ...] = ()) -> Path:
    """Writes `files` ({relative path: content}) under `root`; paths in `executable` get mode 0755."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, spec in files.items():
        data, mode = _content(spec, rel, executable)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    return root


def tar_pack(files: Files, layout: str = "root", top: str = "pack",
             executable: tuple[str, ...] = (), extra: Optional[list] = None) -> bytes:
    """A tar.gz of `files`: layout "root" (files at the root), "dotted" (`./x` entries with a bare
    `.` directory, as `tar -C dir .` writes them) or "topdir" (under one top-level directory).
    `extra`: (TarInfo, bytes|None) pairs appended as they are (malicious entries)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        prefix = {"root": "", "dotted": "./", "topdir": top + "/"}[layout]
        if layout == "dotted":
            info = tarfile.TarInfo(".")
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        if layout == "topdir":
            info = tarfile.TarInfo(top)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for rel, spec in sorted(files.items()):
            data, mode = _content(spec, rel, executable)
            info = tarfile.TarInfo(prefix + rel)
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra or []:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def upload(api, archive: bytes, force: Optional[bool] = None, filename: str = "pack.tar.gz",
           timeout: float = 60) -> requests.Response:
    data = {} if force is None else {"force": "true" if force else "false"}
    return requests.post(api.url("/api/v1/packs/upload"),
                         headers={"Authorization": f"Bearer {api.token}"},
                         files={"pack": (filename, archive, "application/gzip")}, data=data,
                         timeout=timeout)


def upload_pack(api, files: Files, force: bool = False) -> dict:
    """Archives `files` and installs them; asserts 201 and returns the answer's data
    ({pack, components})."""
    from attune_e2e import expect
    return expect(upload(api, tar_pack(files), force=force or None), 201)["data"]


def register(api, path: Union[str, Path], force: Optional[bool] = None,
             timeout: float = 60) -> requests.Response:
    body = {"path": str(path)}
    if force is not None:
        body["force"] = force
    return api.post("/api/v1/packs/register", json=body, timeout=timeout)


def wait_environment(api, ref: str, timeout: float = 180) -> dict:
    """Waits until the pack's environment is no longer building; returns the pack."""
    deadline = time.time() + timeout
    while True:
        pack = api.get_data(f"/api/v1/packs/{ref}")
        env = pack.get("environment")
        if env is None or env.get("status") != "building":
            return pack
        if time.time() > deadline:
            raise AssertionError(f"pack {ref} environment still building after {timeout}s: {env}")
        time.sleep(0.2)


PODMAN_SANDBOX_ARGS = ["--runtime", "runc", "--ulimit", "nofile=20000:20000",
                       "--ulimit", "nproc=32768:32768"]  # this sandbox's podman (ENVIRONMENT.md)


def import_busybox_image(podman: str, workdir: Path, name: str,
                         busybox: str = "/bin/busybox") -> str:
    """Builds a container image without a registry: a root fs of static busybox and its applet
    links, `podman import`ed as `name`. Returns the image id (for `podman rmi`)."""
    import shutil
    import subprocess
    root = workdir / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "tmp").mkdir()
    shutil.copy(shutil.which("busybox") or busybox, root / "bin" / "busybox")
    for applet in ("sh", "cat", "echo", "env", "sleep", "sed", "cut", "tr", "base64", "touch", "pwd",
                   "printf", "true", "ls"):
        (root / "bin" / applet).symlink_to("busybox")
    tar_path = workdir / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(root, arcname=".")
    imported = subprocess.run([podman, "import", str(tar_path), name], check=True,
                              capture_output=True, text=True)
    return imported.stdout.strip().splitlines()[-1]
