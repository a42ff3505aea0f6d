"""Packs for e2e tests: build a pack archive in memory and install it with POST /api/v1/packs/upload
(API.md §8: multipart, file field `pack`, a tar.gz with the pack's files at its root)."""
from __future__ import annotations

import io
import tarfile
from typing import Union

from attune_e2e import expect

FileSpec = Union[str, tuple]  # text, or (text, mode)


def pack_tar_gz(files: dict[str, FileSpec]) -> bytes:
    """files: relative path → text or (text, mode). Directories are implied."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        dirs = set()
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, spec in files.items():
            text, mode = (spec, 0o644) if isinstance(spec, str) else spec
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload_pack(api, files: dict[str, FileSpec], force: bool = False) -> dict:
    """Installs the pack; returns the answer's data ({pack, components})."""
    data = {"force": "true"} if force else {}
    resp = api.post("/api/v1/packs/upload", files={"pack": ("pack.tar.gz", pack_tar_gz(files), "application/gzip")},
                    data=data)
    return expect(resp, 201)["data"]
