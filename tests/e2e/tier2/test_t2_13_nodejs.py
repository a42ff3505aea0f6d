"""T2.13 — Node.js actions (SCENARIOS.md), API.md §8, §11: packs installed over the API run node.js actions —
a plain script reading its parameters from stdin, packages from the pack's package.json (local `npm pack`
tarballs and directories, never the registry), several packages, and (async) exported functions in CommonJS and
ES modules whose return value is the JSON result."""
from __future__ import annotations

from pathlib import Path

import pytest

from attune_e2e import uid
from runner_packs import npm_tarball, run_action, upload, wait_environment, write_pack


@pytest.fixture
def nodeserver(server):
    return server


@pytest.fixture
def nodeapi(api):
    return api


def node_action(entry: str, script: str, **extra) -> dict:
    return {"runner_type": "nodejs", "entry_point": entry, "script": script, **extra}


def test_basic_script_reads_parameters_from_stdin(nodeapi, tmp_path):
    ref = f"t213a_{uid(6)}"
    upload(nodeapi, write_pack(tmp_path / ref, ref, {"hello": node_action("hello.js", """
        let input = '';
        process.stdin.setEncoding('utf8');
        process.stdin.on('data', (chunk) => (input += chunk));
        process.stdin.on('end', () => {
          const params = JSON.parse(input);
          console.log(JSON.stringify({ message: `Hello, ${params.name}!`, node: process.version,
                                       action: process.env.ATTUNE_ACTION }));
        });
    """, parameters={"name": {"type": "string", "required": True}})}))
    ex = run_action(nodeapi, f"{ref}.hello", {"name": "Attune"})
    assert ex["status"] == "completed", ex
    assert ex["result"]["data"]["message"] == "Hello, Attune!"
    assert ex["result"]["data"]["action"] == f"{ref}.hello"
    assert ex["result"]["message"] == "Hello, Attune!"  # object keys are copied to the top level
    failing = f"t213b_{uid(6)}"
    upload(nodeapi, write_pack(tmp_path / failing, failing, {"boom": node_action("boom.js", """
        console.error('about to fail');
        process.exit(3);
    """)}))
    bad = run_action(nodeapi, f"{failing}.boom")
    assert bad["status"] == "failed" and bad["result"]["exit_code"] == 3, bad
    assert "about to fail" in bad["result"]["stderr"]


def test_npm_packages_from_package_json(nodeserver, nodeapi, tmp_path):
    ref = f"t213c_{uid(6)}"
    root = tmp_path / ref
    vendor = root / "vendor"
    vendor.mkdir(parents=True)
    tgz = npm_tarball(vendor, "attune-t213-shout", "1.2.0", "module.exports = (s) => s.toUpperCase() + '!';\n")
    write_pack(root, ref, {"shout": node_action("shout.js", """
        const shout = require('attune-t213-shout');
        module.exports = (params) => ({ text: shout(params.text),
                                        from: require.resolve('attune-t213-shout') });
    """)}, {"package.json": f'{{"name": "{ref}", "version": "1.0.0", "private": true,'
                            f' "dependencies": {{"attune-t213-shout": "file:vendor/{tgz}"}}}}\n'})
    upload(nodeapi, root)
    ex = run_action(nodeapi, f"{ref}.shout", {"text": "quiet"})
    assert ex["status"] == "completed", ex
    assert ex["result"]["data"]["text"] == "QUIET!"
    env_dir = (nodeserver.data_dir / "envs" / ref).resolve()
    assert Path(ex["result"]["data"]["from"]).resolve().is_relative_to(env_dir), ex["result"]["data"]
    assert wait_environment(nodeapi, ref)["status"] == "ready"


def test_several_packages_and_async_await_in_an_es_module(nodeapi, tmp_path):
    ref = f"t213d_{uid(6)}"
    root = tmp_path / ref
    vendor = root / "vendor"
    vendor.mkdir(parents=True)
    shout = npm_tarball(vendor, "attune-t213-shout", "1.2.0", "module.exports = (s) => s.toUpperCase();\n")
    delay = npm_tarball(vendor, "attune-t213-delay", "0.3.0",
                        "module.exports = (ms, v) => new Promise((r) => setTimeout(() => r(v), ms));\n")
    (root / "lib" / "wrap").mkdir(parents=True)
    (root / "lib" / "wrap" / "package.json").write_text('{"name": "attune-t213-wrap", "version": "2.0.0", '
                                                       '"main": "index.js"}')
    (root / "lib" / "wrap" / "index.js").write_text("module.exports = (s) => `<${s}>`;\n")
    write_pack(root, ref, {
        "combo": node_action("combo.mjs", """
            import shout from 'attune-t213-shout';
            import delay from 'attune-t213-delay';
            import wrap from 'attune-t213-wrap';

            export default async function (params) {
              const started = Date.now();
              const parts = await Promise.all(params.words.map((w, i) => delay(20 * (i + 1), shout(w))));
              return { text: wrap(parts.join(' ')), waited: Date.now() - started >= 20 };
            }
        """, parameters={"words": {"type": "array", "required": True}}),
        "cjs_async": node_action("cjs_async.js", """
            const delay = require('attune-t213-delay');
            module.exports = async ({ n }) => {
              const doubled = await delay(10, n * 2);
              return { doubled };
            };
        """),
        "rejects": node_action("rejects.mjs", """
            export default async () => { await null; throw new Error('async failure from node'); };
        """),
    }, {"package.json": f'{{"name": "{ref}", "version": "1.0.0", "dependencies": {{'
                        f'"attune-t213-shout": "file:vendor/{shout}", "attune-t213-delay": "file:vendor/{delay}",'
                        f' "attune-t213-wrap": "file:lib/wrap"}}}}\n'})
    upload(nodeapi, root)
    ex = run_action(nodeapi, f"{ref}.combo", {"words": ["a", "b", "c"]})
    assert ex["status"] == "completed", ex
    assert ex["result"]["data"] == {"text": "<A B C>", "waited": True}
    cjs = run_action(nodeapi, f"{ref}.cjs_async", {"n": 21})
    assert cjs["status"] == "completed" and cjs["result"]["data"] == {"doubled": 42}, cjs
    rej = run_action(nodeapi, f"{ref}.rejects")
    assert rej["status"] == "failed" and rej["result"]["exit_code"] == 1, rej
    assert "async failure from node" in rej["result"]["stderr"]
