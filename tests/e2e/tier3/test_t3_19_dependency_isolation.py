"""T3.19 — Dependency conflict isolation (SCENARIOS.md): two packs that need different versions of one library
each get their own — python (requirements.txt, local wheels) and node.js (package.json, local npm tarballs) —
also when their actions run at the same time."""
from __future__ import annotations

from pathlib import Path

import pytest

from attune_e2e import TERMINAL, uid
from runner_packs import build_wheel, npm_tarball, upload, wait_environment, write_pack

PY_SCRIPT = """
import json, sys, attune_t319_shared
print(json.dumps({"version": attune_t319_shared.VERSION, "file": attune_t319_shared.__file__}))
"""

NODE_SCRIPT = """
const shared = require('attune-t319-shared');
module.exports = async () => ({ version: shared.version, file: require.resolve('attune-t319-shared') });
"""


@pytest.fixture
def wheels(wheels_dir) -> Path:
    """Both versions of one distribution in the session server's --pip-find-links directory."""
    for version in ("1.0", "2.0"):
        if not list(wheels_dir.glob(f"attune_t319_shared-{version}-*.whl")):
            build_wheel(wheels_dir, "attune_t319_shared", version, f"VERSION = {version!r}\n")
    return wheels_dir


def test_two_packs_two_versions_of_one_library(server, api, wheels, tmp_path):
    packs = {}
    for version in ("1.0", "2.0"):
        ref = f"t319py{version[0]}_{uid(6)}"
        upload(api, write_pack(tmp_path / ref, ref, {
            "which": {"runner_type": "python", "entry_point": "which.py", "script": PY_SCRIPT}},
            {"requirements.txt": f"attune_t319_shared=={version}\n"}))
        packs[ref] = version
    for version in ("1.0.0", "2.0.0"):
        ref = f"t319js{version[0]}_{uid(6)}"
        root = tmp_path / ref
        (root / "vendor").mkdir(parents=True)
        tgz = npm_tarball(root / "vendor", "attune-t319-shared", version,
                          f"module.exports = {{ version: '{version}' }};\n")
        write_pack(root, ref, {"which": {"runner_type": "nodejs", "entry_point": "which.js", "script": NODE_SCRIPT}},
                   {"package.json": f'{{"name": "{ref}", "version": "1.0.0", '
                                    f'"dependencies": {{"attune-t319-shared": "file:vendor/{tgz}"}}}}\n'})
        upload(api, root)
        packs[ref] = version
    for ref in packs:
        assert wait_environment(api, ref)["status"] == "ready", ref

    # All at once, several times each: every execution sees its own pack's version.
    started = [(ref, api.execute(f"{ref}.which")["id"]) for _ in range(3) for ref in packs]
    files = {}
    for ref, exec_id in started:
        ex = api.wait_execution(exec_id, statuses=TERMINAL, timeout=100)
        assert ex["status"] == "completed", ex
        assert ex["result"]["data"]["version"] == packs[ref], (ref, ex["result"])
        f = Path(ex["result"]["data"]["file"]).resolve()
        assert f.is_relative_to((server.data_dir / "envs" / ref).resolve()), (ref, f)
        files.setdefault(ref, set()).add(f)
    assert len({next(iter(s)) for s in files.values()}) == len(packs), "each pack has its own copy"
