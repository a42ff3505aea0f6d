"""GET /metrics in Prometheus text (API.md §5)."""
from __future__ import annotations

import re

from attune_e2e import expect, wait_for

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\d+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(client) -> tuple[str, dict]:
    resp = client.get("/metrics", auth=False)
    assert resp.status_code == 200, resp.text[:500]
    samples: dict = {}
    for line in resp.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return resp.text, samples


def total(samples, name, **labels) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def test_metrics_prometheus_text(anon):
    resp = anon.get("/metrics")
    assert resp.status_code == 200
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain"), ctype
    assert "version=0.0.4" in ctype, ctype
    text, _ = scrape(anon)
    for name in ("attune_http_requests_total", "attune_executions_total", "attune_webhook_requests_total"):
        assert re.search(rf"^# TYPE {name} counter$", text, re.M), f"no counter {name}"


def test_metrics_count_requests_webhooks_executions(api, anon):
    _, before = scrape(anon)
    flow = api.webhook_flow('echo "$message"', action_params={"message": "m"})
    fail = api.create_action(f"{flow.pack_ref}.f", "exit 1")
    api.fire(flow.key, {"a": 1})
    expect(api.fire_webhook("unknown-" + "k" * 40, {"a": 1}), 404)
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "completed"
    assert api.wait_execution(api.execute(fail["ref"], {})["id"])["status"] == "failed"

    def grown():
        _, after = scrape(anon)
        return after if (total(after, "attune_executions_total", status="completed")
                         >= total(before, "attune_executions_total", status="completed") + 1
                         and total(after, "attune_executions_total", status="failed")
                         >= total(before, "attune_executions_total", status="failed") + 1) else None
    after = wait_for(grown, timeout=10, desc="attune_executions_total to count the new executions")
    assert total(after, "attune_http_requests_total") >= total(before, "attune_http_requests_total") + 5
    assert total(after, "attune_webhook_requests_total") >= total(before, "attune_webhook_requests_total") + 2
    outcomes = {dict(ls).get("outcome") for (n, ls) in after if n == "attune_webhook_requests_total"}
    assert len(outcomes - {None}) >= 2, f"webhook outcomes should be labelled: {outcomes}"
