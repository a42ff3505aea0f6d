"""List filters, pagination and shapes of events, enforcements and executions (API.md §2, §3, §6, §11.2)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from attune_e2e import (ALL_STATUSES, PAGINATION_FIELDS, assert_list_envelope, assert_timestamps,
                        expect_error, is_id, now_mark, parse_ts, uid)


@pytest.fixture(scope="module")
def world(server, admin_session):
    """Two triggers A and B; rule ra: A -> ok action; rule rb: B -> failing action; one manual run.

    Timeline: t0 | A fired twice | t_mid | B fired once | manual ok run | t_end
    """
    api = server.client(admin_session["token"])
    u = uid()
    p = api.create_pack(f"flt_{u}")["ref"]
    marker = f"marker-{u}"
    ok = api.create_action(f"{p}.ok", 'echo "$message"')
    bad = api.create_action(f"{p}.bad", 'echo "bad $message"; exit 2')
    ta = api.create_trigger(f"{p}.ta")
    tb = api.create_trigger(f"{p}.tb")
    ka = api.enable_webhook(ta["ref"])
    kb = api.enable_webhook(tb["ref"])
    ra = api.create_rule(f"{p}.ra", ta["ref"], ok["ref"], action_params={"message": "from-a"})
    rb = api.create_rule(f"{p}.rb", tb["ref"], bad["ref"], action_params={"message": "from-b"})

    t0 = now_mark()
    ea1 = api.fire(ka, {"n": 1})["event_id"]
    ea2 = api.fire(ka, {"n": 2})["event_id"]
    api.wait_rule_executions(ra["ref"], 2)
    t_mid = now_mark()
    eb1 = api.fire(kb, {"n": 3})["event_id"]
    api.wait_rule_executions(rb["ref"], 1)
    manual = api.wait_execution(api.execute(ok["ref"], {"message": marker})["id"])
    t_end = now_mark()

    enfs = {e["event"]: e for e in api.items("/api/v1/enforcements", created_after=t0)}
    execs = {e["id"]: e for e in api.items("/api/v1/executions", pack_ref=p)}
    by_enf = {e["enforcement"]: e for e in execs.values() if e["enforcement"] is not None}
    return SimpleNamespace(
        api=api, pack=p, ok=ok, bad=bad, ta=ta, tb=tb, ra=ra, rb=rb, t0=t0, t_mid=t_mid, t_end=t_end,
        ea1=ea1, ea2=ea2, eb1=eb1, marker=marker, manual=manual,
        enf_a1=enfs[ea1], enf_a2=enfs[ea2], enf_b1=enfs[eb1],
        ex_a1=by_enf[enfs[ea1]["id"]], ex_a2=by_enf[enfs[ea2]["id"]], ex_b1=by_enf[enfs[eb1]["id"]],
        execs=execs)


def ids(api, path, **params):
    params.setdefault("page_size", 100)
    body = api.list(path, **params)
    assert_list_envelope(body)
    assert body["pagination"]["total_items"] == len(body["items"]), body["pagination"]
    return sorted(x["id"] for x in body["items"])


# -------------------------------------------------------------------------------------------- events

def test_events_filter_trigger_ref(world):
    assert ids(world.api, "/api/v1/events", trigger_ref=world.ta["ref"]) == sorted([world.ea1, world.ea2])
    assert ids(world.api, "/api/v1/events", trigger_ref=world.tb["ref"]) == [world.eb1]


def test_events_filter_trigger_id(world):
    assert ids(world.api, "/api/v1/events", trigger=world.ta["id"]) == sorted([world.ea1, world.ea2])


def test_events_filter_source(world):
    mine = ids(world.api, "/api/v1/events", source="webhook", created_after=world.t0)
    assert mine == sorted([world.ea1, world.ea2, world.eb1])
    assert ids(world.api, "/api/v1/events", source="not-a-source", created_after=world.t0) == []


def test_events_filter_created_after(world):
    assert ids(world.api, "/api/v1/events", created_after=world.t_mid) == [world.eb1]
    assert ids(world.api, "/api/v1/events", created_after=world.t_end) == []
    assert ids(world.api, "/api/v1/events", trigger_ref=world.ta["ref"], created_after=world.t_mid) == []


def test_event_shapes(world):
    rows = world.api.items("/api/v1/events", trigger_ref=world.ta["ref"])
    for row in rows:
        assert is_id(row["id"])
        assert_timestamps(row)
        assert row["has_payload"] is True
        assert row["trigger"] == world.ta["id"]
        assert row["source_ref"] == "webhook"
    ev = world.api.get_data(f"/api/v1/events/{world.ea1}")
    assert ev["payload"] == {"n": 1}


# -------------------------------------------------------------------------------------- enforcements

def test_enforcements_filter_rule(world):
    a = sorted([world.enf_a1["id"], world.enf_a2["id"]])
    assert ids(world.api, "/api/v1/enforcements", rule=world.ra["id"]) == a
    assert ids(world.api, "/api/v1/enforcements", rule_id=world.ra["id"]) == a
    assert ids(world.api, "/api/v1/enforcements", rule_ref=world.ra["ref"]) == a
    assert ids(world.api, "/api/v1/enforcements", rule_ref=world.rb["ref"]) == [world.enf_b1["id"]]


def test_enforcements_filter_event(world):
    assert ids(world.api, "/api/v1/enforcements", event=world.ea2) == [world.enf_a2["id"]]


def test_enforcements_filter_status(world):
    a = sorted([world.enf_a1["id"], world.enf_a2["id"]])
    assert ids(world.api, "/api/v1/enforcements", rule_ref=world.ra["ref"], status="processed") == a
    assert ids(world.api, "/api/v1/enforcements", rule_ref=world.ra["ref"], status="created") == []
    assert ids(world.api, "/api/v1/enforcements", rule_ref=world.ra["ref"], status="disabled") == []


def test_enforcements_filter_trigger_ref(world):
    assert ids(world.api, "/api/v1/enforcements", trigger_ref=world.tb["ref"]) == [world.enf_b1["id"]]


def test_enforcements_filter_created_after(world):
    assert ids(world.api, "/api/v1/enforcements", created_after=world.t_mid) == [world.enf_b1["id"]]
    assert ids(world.api, "/api/v1/enforcements", created_after=world.t_end) == []


def test_enforcement_shapes(world):
    e = world.api.get_data(f"/api/v1/enforcements/{world.enf_a1['id']}")
    assert is_id(e["id"])
    assert e["status"] == "processed"
    assert e["rule"] == world.ra["id"] and e["rule_ref"] == world.ra["ref"]
    assert e["trigger_ref"] == world.ta["ref"]
    assert e["event"] == world.ea1
    assert e["config"] == {"message": "from-a"}
    assert e["payload"] == {"n": 1}
    assert e["condition"] == "all"
    assert_timestamps(e, ("created", "updated", "resolved_at"))


def test_enforcement_executions_route(world):
    body = world.api.list(f"/api/v1/enforcements/{world.enf_a1['id']}/executions")
    assert_list_envelope(body)
    assert [x["id"] for x in body["items"]] == [world.ex_a1["id"]]
    expect_error(world.api.get("/api/v1/enforcements/9007199254740990/executions"), 404, "NOT_FOUND")


# ---------------------------------------------------------------------------------------- executions

def test_executions_filter_action_ref(world):
    ok_ids = sorted([world.ex_a1["id"], world.ex_a2["id"], world.manual["id"]])
    assert ids(world.api, "/api/v1/executions", action_ref=world.ok["ref"]) == ok_ids
    assert ids(world.api, "/api/v1/executions", action_ref=world.bad["ref"]) == [world.ex_b1["id"]]


def test_executions_filter_pack_ref_and_alias(world):
    all4 = sorted([world.ex_a1["id"], world.ex_a2["id"], world.ex_b1["id"], world.manual["id"]])
    assert ids(world.api, "/api/v1/executions", pack_ref=world.pack) == all4
    assert ids(world.api, "/api/v1/executions", pack_name=world.pack) == all4


def test_executions_filter_status(world):
    api, p = world.api, world.pack
    ok_ids = sorted([world.ex_a1["id"], world.ex_a2["id"], world.manual["id"]])
    assert ids(api, "/api/v1/executions", pack_ref=p, status="completed") == ok_ids
    assert ids(api, "/api/v1/executions", pack_ref=p, status="failed") == [world.ex_b1["id"]]
    assert ids(api, "/api/v1/executions", pack_ref=p, status="completed,failed") == sorted(ok_ids + [world.ex_b1["id"]])
    assert ids(api, "/api/v1/executions", pack_ref=p, status="running") == []
    assert ids(api, "/api/v1/executions", pack_ref=p, status="running,requested,scheduled") == []


def test_executions_filter_enforcement(world):
    assert ids(world.api, "/api/v1/executions", enforcement=world.enf_b1["id"]) == [world.ex_b1["id"]]


def test_executions_filter_rule(world):
    a = sorted([world.ex_a1["id"], world.ex_a2["id"]])
    assert ids(world.api, "/api/v1/executions", rule=world.ra["id"]) == a
    assert ids(world.api, "/api/v1/executions", rule_ref=world.ra["ref"]) == a
    assert ids(world.api, "/api/v1/executions", rule_ref=world.rb["ref"]) == [world.ex_b1["id"]]


def test_executions_filter_trigger_ref(world):
    assert ids(world.api, "/api/v1/executions", trigger_ref=world.ta["ref"]) == sorted(
        [world.ex_a1["id"], world.ex_a2["id"]])
    assert ids(world.api, "/api/v1/executions", trigger_ref=world.tb["ref"]) == [world.ex_b1["id"]]


def test_executions_filter_created_after_before(world):
    api, p = world.api, world.pack
    all4 = sorted(world.execs)
    assert ids(api, "/api/v1/executions", pack_ref=p, created_after=world.t0) == all4
    assert ids(api, "/api/v1/executions", pack_ref=p, created_before=world.t0) == []
    assert ids(api, "/api/v1/executions", pack_ref=p, created_before=world.t_mid) == sorted(
        [world.ex_a1["id"], world.ex_a2["id"]])
    assert ids(api, "/api/v1/executions", pack_ref=p, created_after=world.t_mid) == sorted(
        [world.ex_b1["id"], world.manual["id"]])
    assert ids(api, "/api/v1/executions", created_after=world.t_mid, created_before=world.t_end) == sorted(
        [world.ex_b1["id"], world.manual["id"]])
    # Any RFC 3339 value is accepted on input, e.g. with an offset.
    dt = parse_ts(world.t_mid)
    with_offset = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+00:00"
    assert ids(api, "/api/v1/executions", pack_ref=p, created_after=with_offset) == sorted(
        [world.ex_b1["id"], world.manual["id"]])


def test_executions_filter_result_contains(world):
    assert ids(world.api, "/api/v1/executions", result_contains=world.marker) == [world.manual["id"]]
    assert ids(world.api, "/api/v1/executions", pack_ref=world.pack, result_contains="bad from-b") == [
        world.ex_b1["id"]]
    assert ids(world.api, "/api/v1/executions", result_contains=f"absent-{uid()}") == []


def test_executions_filter_parent(world):
    # No workflows exist yet: nothing has these executions as parent.
    assert ids(world.api, "/api/v1/executions", parent=world.manual["id"]) == []
    assert ids(world.api, "/api/v1/executions", parent=world.ex_a1["id"]) == []


def test_executions_status_route(world):
    body = world.api.list("/api/v1/executions/status/completed", page_size=100, created_after=world.t0)
    assert_list_envelope(body)
    assert all(x["status"] == "completed" for x in body["items"]), body["items"]
    got = {x["id"] for x in body["items"]}
    assert {world.ex_a1["id"], world.ex_a2["id"], world.manual["id"]} <= got
    assert world.ex_b1["id"] not in got
    failed = world.api.list("/api/v1/executions/status/failed", page_size=100, created_after=world.t0)
    assert world.ex_b1["id"] in {x["id"] for x in failed["items"]}
    assert all(x["status"] == "failed" for x in failed["items"])


def test_executions_stats(world):
    stats = world.api.get_data("/api/v1/executions/stats", pack_ref=world.pack)
    assert stats["total"] == 4
    assert stats["active"] == 0
    assert set(stats["by_status"]) == set(ALL_STATUSES), stats
    assert stats["by_status"]["completed"] == 3
    assert stats["by_status"]["failed"] == 1
    assert sum(stats["by_status"].values()) == 4
    ra = world.api.get_data("/api/v1/executions/stats", rule_ref=world.ra["ref"])
    assert ra["total"] == 2 and ra["by_status"]["completed"] == 2
    overall = world.api.get_data("/api/v1/executions/stats")
    assert overall["total"] >= 4
    assert sum(overall["by_status"].values()) == overall["total"]


def test_execution_shapes(world):
    ex = world.api.get_data(f"/api/v1/executions/{world.ex_a1['id']}")
    assert is_id(ex["id"])
    assert ex["action"] == world.ok["id"] and ex["action_ref"] == world.ok["ref"]
    assert ex["enforcement"] == world.enf_a1["id"]
    assert ex["config"] == {"message": "from-a"}
    assert ex["status"] == "completed"
    assert ex["parent"] is None
    assert_timestamps(ex, ("created", "updated", "started_at"))
    for f in ("stdout", "stderr", "exit_code", "duration_ms"):
        assert f in ex["result"], ex["result"]


def test_filter_bad_values_400(world):
    api = world.api
    for path, params in (
        ("/api/v1/executions", {"created_after": "yesterday"}),
        ("/api/v1/executions", {"created_before": "2025-13-45"}),
        ("/api/v1/executions", {"enforcement": "abc"}),
        ("/api/v1/executions", {"rule": "abc"}),
        ("/api/v1/executions", {"parent": "x1"}),
        ("/api/v1/enforcements", {"event": "abc"}),
        ("/api/v1/enforcements", {"rule": "abc"}),
        ("/api/v1/events", {"trigger": "abc"}),
        ("/api/v1/events", {"created_after": "not-a-date"}),
    ):
        expect_error(api.get(path, params=params), 400, "BAD_REQUEST")


def test_missing_ids_404(world):
    for path in ("/api/v1/events/9007199254740990", "/api/v1/enforcements/9007199254740990",
                 "/api/v1/executions/9007199254740990"):
        expect_error(world.api.get(path), 404, "NOT_FOUND")


# ---------------------------------------------------------------------------------------- pagination

def page(paged, **params):
    body = paged.api.list("/api/v1/executions", pack_ref=paged.pack, **params)
    assert_list_envelope(body)
    return body


@pytest.fixture(scope="module")
def paged(server, admin_session):
    """7 completed executions in one pack, created one after the other."""
    api = server.client(admin_session["token"])
    p = api.create_pack(f"pg_{uid()}")["ref"]
    act = api.create_action(f"{p}.n", 'echo "$i"')
    created = []
    for i in range(7):
        created.append(api.execute(act["ref"], {"i": i})["id"])
    for i in created:
        api.wait_execution(i)
    return SimpleNamespace(api=api, pack=p, ids=created)  # ids in creation order


def test_pagination_defaults_and_order(paged):
    body = page(paged)
    pag = body["pagination"]
    assert pag == {"page": 1, "page_size": 50, "total_items": 7, "total_pages": 1,
                   "has_previous": False, "has_next": False}
    assert [x["id"] for x in body["items"]] == list(reversed(paged.ids)), "newest first by default"
    created = [x["created"] for x in body["items"]]
    assert created == sorted(created, reverse=True)
    assert [x["id"] for x in page(paged, order="desc")["items"]] == list(reversed(paged.ids))
    assert [x["id"] for x in page(paged, order="asc")["items"]] == paged.ids


def test_pagination_pages(paged):
    desc = list(reversed(paged.ids))
    p1 = page(paged, page_size=3)
    assert [x["id"] for x in p1["items"]] == desc[0:3]
    assert p1["pagination"] == {"page": 1, "page_size": 3, "total_items": 7, "total_pages": 3,
                                "has_previous": False, "has_next": True}
    p2 = page(paged, page_size=3, page=2)
    assert [x["id"] for x in p2["items"]] == desc[3:6]
    assert p2["pagination"]["has_previous"] is True and p2["pagination"]["has_next"] is True
    p3 = page(paged, page_size=3, page=3)
    assert [x["id"] for x in p3["items"]] == desc[6:7]
    assert p3["pagination"]["has_previous"] is True and p3["pagination"]["has_next"] is False
    p9 = page(paged, page_size=3, page=9)
    assert p9["items"] == [] and p9["data"] == []
    assert p9["pagination"]["total_items"] == 7 and p9["pagination"]["total_pages"] == 3
    assert p9["pagination"]["page"] == 9
    assert p9["pagination"]["has_next"] is False


def test_pagination_aliases(paged):
    desc = list(reversed(paged.ids))
    for alias in ("per_page", "limit"):
        body = page(paged, **{alias: 2})
        assert body["pagination"]["page_size"] == 2, alias
        assert [x["id"] for x in body["items"]] == desc[:2], alias
    assert page(paged, page_size=2, per_page=5)["pagination"]["page_size"] == 2
    assert page(paged, page_size=2, limit=5)["pagination"]["page_size"] == 2
    assert page(paged, per_page=4, limit=5)["pagination"]["page_size"] == 4


def test_pagination_offset(paged):
    desc = list(reversed(paged.ids))
    body = page(paged, page_size=2, offset=1)
    assert [x["id"] for x in body["items"]] == desc[1:3]
    assert body["pagination"]["page"] == 1
    body = page(paged, page_size=2, offset=4, page=1)
    assert [x["id"] for x in body["items"]] == desc[4:6], "offset overrides page"
    assert body["pagination"]["page"] == 3
    body = page(paged, limit=3, offset=6)
    assert [x["id"] for x in body["items"]] == desc[6:7]
    assert body["pagination"]["page"] == 3
    body = page(paged, limit=3, offset=70)
    assert body["items"] == [] and body["pagination"]["total_items"] == 7
    asc = page(paged, order="asc", limit=2, offset=2)
    assert [x["id"] for x in asc["items"]] == paged.ids[2:4]


def test_pagination_clamps(paged):
    assert page(paged, page_size=1000)["pagination"]["page_size"] == 100
    assert page(paged, page_size=101)["pagination"]["page_size"] == 100
    assert page(paged, limit=500)["pagination"]["page_size"] == 100
    body = page(paged, page_size=0)
    assert body["pagination"]["page_size"] == 1 and len(body["items"]) == 1
    assert page(paged, page_size=-3)["pagination"]["page_size"] == 1
    for p in (0, -1, -100):
        body = page(paged, page=p, page_size=3)
        assert body["pagination"]["page"] == 1, p
        assert [x["id"] for x in body["items"]] == list(reversed(paged.ids))[:3]


@pytest.mark.parametrize("param", ["page", "page_size", "per_page", "limit", "offset"])
@pytest.mark.parametrize("value", ["abc", "1.5", "", "3x"])
def test_pagination_non_numeric_400(paged, param, value):
    expect_error(paged.api.get("/api/v1/executions", params={param: value}), 400, "BAD_REQUEST")


def test_pagination_bad_order_400(paged):
    expect_error(paged.api.get("/api/v1/executions", params={"order": "sideways"}), 400, "BAD_REQUEST")


@pytest.mark.parametrize("path", ["/api/v1/packs", "/api/v1/actions", "/api/v1/triggers", "/api/v1/rules",
                                  "/api/v1/events", "/api/v1/enforcements", "/api/v1/executions"])
def test_every_list_has_envelope(world, path):
    body = world.api.list(path, page_size=2)
    assert_list_envelope(body)
    assert body["pagination"]["page_size"] == 2
    assert len(body["items"]) <= 2
    for x in body["items"]:
        assert is_id(x["id"])
        assert_timestamps(x)
    assert set(body["pagination"]) >= set(PAGINATION_FIELDS)
