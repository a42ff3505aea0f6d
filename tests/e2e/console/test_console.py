"""The web console (issue 18): login, live executions, detail + lineage, generated run and inquiry forms,
rules, keys, rights (viewer) and a narrow screen — through a headless Chromium only; the REST API is used
just to set things up and to check what the console did."""
from __future__ import annotations

import json

from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from attune_e2e import expect, uid
from tenants import assign, custom_set

SECRET_TEXT = "•••• (secret)"


def row_status(ui, exec_id: int) -> str | None:
    return ui.js("var td = document.querySelector('#executions-table tr[data-execution-id=\"' + arguments[0] + "
                 "'\"] td.status'); return td ? td.dataset.status : null", exec_id)


# --------------------------------------------------------------------------------------------- login

def test_login_bad_then_good_password(ui, server):
    ui.open("")
    ui.wait(lambda d: d.execute_script("return location.hash") == "#/login", desc="redirect to #/login")
    ui.el("#login-user")
    for sel in ("#login-user", "#login-password"):  # every input has its <label for>
        assert ui.css(f"label[for='{sel[1:]}']"), f"no label for {sel}"
    ui.shot("login")

    expected = expect(server.client().post("/auth/login", json={"login": server.admin_login, "password": "nope-nope"},
                                           auth=False), 401)["error"]
    ui.login_ui(server.admin_login, "wrong-password-123")
    err = ui.el("#login-error")
    ui.wait(lambda d: err.text.strip() == expected, desc=f"the API's error {expected!r}")
    assert ui.js("return sessionStorage.getItem('attune.session')") is None

    # Keyboard only: the password field has focus after typing; Enter submits.
    ui.el("#login-user").clear()
    ui.el("#login-user").send_keys(server.admin_login)
    ui.el("#login-password").clear()
    ui.el("#login-password").send_keys(server.admin_password + Keys.ENTER)
    ui.el("#executions-table")
    assert ui.js("return location.hash") == "#/executions"
    ui.ws_open()
    assert ui.js("return JSON.parse(sessionStorage.getItem('attune.session')).user.login") == server.admin_login
    ui.wait(lambda d: d.execute_script(
        "return performance.getEntriesByName('attune:executions-first-page').length") >= 1,
        desc="performance mark attune:executions-first-page")

    ui.el("#logout").click()
    ui.el("#login-user")
    assert ui.js("return sessionStorage.getItem('attune.session')") is None


# ------------------------------------------------------------------------------- live executions

SECRET_ACTION = {"param_schema": {"msg": {"type": "string", "required": True},
                                  "token": {"type": "string", "secret": True}}}


def test_webhook_execution_appears_live_then_detail_with_lineage(admin_ui, api):
    ui = admin_ui
    marker = f"console-live-{uid(8)}"
    flow = api.webhook_flow(f'sleep 1; echo "{marker} $msg"', prefix="console",
                            action_params={"msg": "{{ event.payload.msg }}", "token": "s3cr3t-t0ken"},
                            action_fields=SECRET_ACTION)
    ui.ws_open()
    ui.js("window.__noReload = 'still-here'")
    stats_before = ui.js("return window.__attuneStats.notifications")

    receipt = api.fire(flow.key, {"msg": "from-webhook"})
    ex = api.execution_for_enforcement(api.wait_enforcements(flow.rule_ref, 1)[0]["id"])
    exec_id = ex["id"]
    # The row arrives by the WebSocket (no reload), at the top, and its status follows to completed.
    ui.wait(lambda d: row_status(ui, exec_id) is not None, 15, f"row of execution {exec_id}")
    first_id = ui.js("return document.querySelector('#executions-table tbody tr').dataset.executionId")
    assert int(first_id) == exec_id
    ui.wait(lambda d: row_status(ui, exec_id) == "completed", 30, f"execution {exec_id} completed in the table")
    assert ui.js("return window.__noReload") == "still-here", "the page was reloaded"
    stats = ui.js("return window.__attuneStats")
    assert stats["notifications"] > stats_before and stats["frames"] >= 1, stats
    ui.shot("executions")

    # Detail: stdout, redacted secret, lineage event -> enforcement -> execution.
    ui.el(f"#executions-table tr[data-execution-id='{exec_id}'] td.id a").click()
    ui.el("#execution-detail")
    assert ui.js("return location.hash") == f"#/executions/{exec_id}"
    ui.wait(lambda d: ui.el("#exec-status").get_attribute("data-status") == "completed", desc="completed status")
    assert f"{marker} from-webhook" in ui.el("#exec-stdout").text
    assert ui.el("#exec-exit-code").text.strip() == "0"
    token_cell = ui.el("#exec-params tr[data-param='token'] td")
    assert token_cell.text.strip() == SECRET_TEXT
    assert "s3cr3t-t0ken" not in ui.text()
    ui.wait(lambda d: str(receipt["event_id"]) in ui.el("#lineage-event").text, desc="event id in the lineage")
    enf_text = ui.el("#lineage-enforcement").text
    assert str(ex["enforcement"]) in enf_text
    ui.wait(lambda d: flow.rule_ref in ui.el("#lineage-enforcement").text, desc="rule ref in the lineage")
    assert not ui.css("#exec-cancel"), "a completed execution offers Cancel"
    ui.shot("execution-detail")


# ------------------------------------------------------------------------------------- run form

RUN_SCHEMA = {
    "message": {"type": "string", "required": True, "description": "What to say"},
    "count": {"type": "integer", "minimum": 1, "maximum": 5, "default": 2},
    "loud": {"type": "boolean", "default": False},
    "color": {"type": "string", "enum": ["red", "green", "blue"]},
    "api_key": {"type": "string", "secret": True},
}


def run_action(api) -> str:
    pack = api.create_pack(f"console_{uid(8)}")["ref"]
    return api.create_action(f"{pack}.say", 'echo "msg=$message count=$count loud=$loud color=$color"',
                             param_schema=RUN_SCHEMA)["ref"]


def test_run_action_from_generated_form(admin_ui, api):
    ui = admin_ui
    ref = run_action(api)
    ui.goto(f"#/actions/{ref}")
    ui.el("#run-form")
    # The generated inputs: text, number, checkbox, select, password (secret).
    assert ui.el("#run-message").get_attribute("type") == "text"
    assert ui.el("#run-count").get_attribute("type") == "number"
    assert ui.el("#run-count").get_attribute("value") == "2"
    assert ui.el("#run-loud").get_attribute("type") == "checkbox"
    assert ui.el("#run-color").tag_name == "select"
    assert ui.el("#run-api_key").get_attribute("type") == "password"
    for name in RUN_SCHEMA:
        assert ui.css(f"label[for='run-{name}']"), f"no label for {name}"

    ui.el("#run-message").send_keys("hello")
    ui.el("#run-count").clear()
    ui.el("#run-count").send_keys("3")
    ui.el("#run-loud").click()
    Select(ui.el("#run-color")).select_by_visible_text("green")
    ui.shot("run-form")
    ui.el("#run-submit").click()

    ui.wait(lambda d: d.execute_script("return location.hash").startswith("#/executions/"), desc="the new execution")
    exec_id = int(ui.js("return location.hash").rsplit("/", 1)[1])
    ui.wait(lambda d: ui.el("#exec-status").get_attribute("data-status") == "completed", 30, "completed")
    assert "msg=hello count=3" in ui.el("#exec-stdout").text
    assert "color=green" in ui.el("#exec-stdout").text
    config = api.get_data(f"/api/v1/executions/{exec_id}")["config"]
    assert config["message"] == "hello" and config["count"] == 3 and config["loud"] is True
    assert config["color"] == "green" and "api_key" not in config, config


def test_run_form_shows_field_errors(admin_ui, api):
    ui = admin_ui
    ref = run_action(api)
    ui.goto(f"#/actions/{ref}")
    ui.el("#run-form")
    # Required and empty: the form says so before any request.
    ui.el("#run-submit").click()
    err = ui.el("[data-field-error='message']")
    assert "required" in err.text
    assert ui.el("#run-message").get_attribute("aria-invalid") == "true"

    # Out of bounds: the API's 422 details.fields message appears next to the field.
    ui.el("#run-message").send_keys("hi")
    ui.el("#run-count").clear()
    ui.el("#run-count").send_keys("9")
    ui.el("#run-submit").click()
    err = ui.el("[data-field-error='count']")
    assert "count" in err.text and len(err.text) > len("count "), err.text
    assert ui.el("#run-error").text  # the API's message as well
    assert ui.js("return location.hash") == f"#/actions/{ref}"
    assert not ui.css("[data-field-error='message']")
    ui.shot("run-form-error")


# ------------------------------------------------------------------------------------- inquiries

ASK_SCHEMA = {"approved": {"type": "boolean", "required": True},
              "reason": {"type": "string"},
              "replicas": {"type": "integer", "minimum": 1, "maximum": 5}}


def test_answer_pending_inquiry_then_cancel_execution(admin_ui, api):
    ui = admin_ui
    pack = api.create_pack(f"console_{uid(8)}")["ref"]
    act = api.create_action(f"{pack}.waiter", "sleep 60", timeout_seconds=90)
    ex = api.execute(act["ref"], {})
    q = expect(api.post("/api/v1/inquiries", json={
        "execution": ex["id"], "purpose": "approval", "prompt": f"Deploy {pack}?",
        "response_schema": ASK_SCHEMA}), 201)["data"]["inquiry"]

    ui.goto("#/inquiries")
    card = f"article[data-inquiry-id='{q['id']}']"
    ui.el(card)
    assert f"Deploy {pack}?" in ui.el(card).text
    p = f"inq-{q['id']}"
    assert ui.el(f"#{p}-approved").get_attribute("type") == "checkbox"
    assert ui.el(f"#{p}-replicas").get_attribute("type") == "number"

    # A value the API refuses (400): its message is shown, the inquiry stays.
    ui.el(f"#{p}-approved").click()
    ui.el(f"#{p}-replicas").send_keys("9")
    ui.el(f"#{p}-submit").click()
    err = ui.el(f"#{p}-error")
    assert "replicas" in err.text, err.text
    assert api.get_data(f"/api/v1/inquiries/{q['id']}")["status"] == "pending"
    ui.shot("inquiries")

    ui.el(f"#{p}-replicas").clear()
    ui.el(f"#{p}-replicas").send_keys("2")
    ui.el(f"#{p}-reason").send_keys("looks good")
    ui.el(f"#{p}-submit").click()
    ui.el("#inquiry-done")
    ui.gone(card)
    got = api.get_data(f"/api/v1/inquiries/{q['id']}")
    assert got["status"] == "responded" and got["response"] == {"approved": True, "reason": "looks good",
                                                                 "replicas": 2}, got

    # Quick answers from response_options send their stored response.
    ex2 = api.execute(act["ref"], {})
    options = [{"ref": "yes", "label": "Approve", "style": "primary", "response": {"approved": True}},
               {"ref": "no", "label": "Reject", "style": "danger", "response": {"approved": False}}]
    q2 = expect(api.post("/api/v1/inquiries", json={
        "execution": ex2["id"], "purpose": "approval", "prompt": "Second?", "response_schema": ASK_SCHEMA,
        "response_options": options}), 201)["data"]["inquiry"]
    card2 = f"article[data-inquiry-id='{q2['id']}']"
    ui.el(f"{card2} button[data-option='no']").click()
    ui.gone(card2)
    got2 = api.get_data(f"/api/v1/inquiries/{q2['id']}")
    assert got2["status"] == "responded" and got2["response"] == {"approved": False}, got2
    expect(api.post(f"/api/v1/executions/{ex2['id']}/cancel"), 200)

    # The still-running execution lists its (answered) inquiry and offers Cancel; it works.
    ui.goto(f"#/executions/{ex['id']}")
    ui.wait(lambda d: "responded" in ui.el(f"#exec-inquiries li[data-inquiry-id='{q['id']}']").text,
            desc="the execution's inquiry")
    ui.wait(lambda d: ui.el("#exec-status").get_attribute("data-status") == "running", 30, "running")
    ui.el("#exec-cancel").click()
    ui.wait(lambda d: ui.el("#exec-status").get_attribute("data-status") == "cancelled", 30, "cancelled (live)")
    assert not ui.css("#exec-cancel")


# ------------------------------------------------------------------------------------------ rules

def test_enable_and_disable_rule(admin_ui, api):
    ui = admin_ui
    flow = api.webhook_flow("true", prefix="console")
    ui.goto("#/rules")
    row = f"#rules-table tr[data-rule-ref='{flow.rule_ref}']"
    ui.el(row)

    def enabled_in_ui():
        return ui.el(f"{row} td.rule-enabled").get_attribute("data-enabled")

    assert enabled_in_ui() == "true"
    assert ui.el(f"{row} .rule-toggle").text.strip() == "Disable"
    ui.el(f"{row} .rule-toggle").click()
    ui.wait(lambda d: enabled_in_ui() == "false", desc="rule shown disabled")
    assert api.get_data(f"/api/v1/rules/{flow.rule_ref}")["enabled"] is False
    ui.wait(lambda d: ui.el(f"{row} .rule-toggle").text.strip() == "Enable", desc="Enable button")
    ui.shot("rules")
    ui.el(f"{row} .rule-toggle").click()
    ui.wait(lambda d: enabled_in_ui() == "true", desc="rule shown enabled")
    assert api.get_data(f"/api/v1/rules/{flow.rule_ref}")["enabled"] is True

    # A change made elsewhere arrives live (rule_lifecycle_changed).
    expect(api.post(f"/api/v1/rules/{flow.rule_ref}/disable"), 200)
    ui.wait(lambda d: enabled_in_ui() == "false", desc="live rule change")

    # Triggers list shows the webhook URL.
    ui.goto("#/triggers")
    url = ui.el(f"#triggers-table tr[data-trigger-ref='{flow.trigger_ref}'] .webhook-url").text
    assert url == f"{ui.base}/api/v1/webhooks/{flow.key}"
    ui.shot("triggers")


# ------------------------------------------------------------------------------------------- keys

def test_key_value_hidden_until_show(admin_ui, api):
    ui = admin_ui
    local = f"console_{uid(8)}"
    value = f"v-{uid(12)}"
    key = expect(api.post("/api/v1/keys", json={"local_ref": local, "value": value}), 201)["data"]
    ui.goto("#/keys")
    row = f"#keys-table tr[data-key-ref='{key['ref']}']"
    ui.el(row)
    assert value not in ui.text()
    assert ui.el(f"{row} td.key-value").get_attribute("data-shown") == "false"
    ui.el(f"{row} .key-show").click()
    ui.wait(lambda d: value in ui.el(f"{row} td.key-value").text, desc="revealed value")
    ui.shot("keys")
    ui.el(f"{row} .key-show").click()  # Hide
    ui.wait(lambda d: value not in ui.el(f"{row} td.key-value").text, desc="hidden again")


# ----------------------------------------------------------------------------------------- rights

def test_viewer_sees_no_mutating_buttons(ui, api, viewer):
    # The viewer holds core.viewer plus read-only grants naming the admin's pack (so that it sees the pack,
    # its rule and its executions, §16.3) — no execute, cancel, update, respond or decrypt anywhere.
    flow = api.webhook_flow("sleep 30", prefix="console", action_fields={"timeout_seconds": 60})
    reads = custom_set(api, [{"resource": r, "actions": ["read"], "constraints": {"pack_refs": [flow.pack_ref]}}
                             for r in ("packs", "actions", "triggers", "rules", "executions", "events",
                                       "enforcements", "inquiries")], prefix="console_reads")
    assign(api, viewer["id"], reads)
    running = api.execute(flow.action_ref, {})
    local = f"console_{uid(8)}"
    key = expect(api.post("/api/v1/keys", json={"local_ref": local, "value": "top-secret-value"}), 201)["data"]

    ui.open("#/login")
    ui.login_ui(viewer["login"], viewer["password"])
    ui.el("#executions-table")
    ui.ws_open()
    ui.el(f"#executions-table tr[data-execution-id='{running['id']}']")

    ui.goto("#/actions")
    ui.el(f"#actions-table tr[data-action-ref='{flow.action_ref}']")
    assert not ui.css(".run-link"), "viewer offered Run"
    ui.goto(f"#/actions/{flow.action_ref}")
    ui.el("#action-detail")
    assert not ui.css("#run-form"), "viewer offered the run form"

    ui.goto(f"#/executions/{running['id']}")
    ui.wait(lambda d: ui.el("#exec-status").get_attribute("data-status") in ("running", "scheduled", "scheduling",
                                                                             "requested"), desc="active execution")
    assert not ui.css("#exec-cancel"), "viewer offered Cancel"

    ui.goto("#/rules")
    ui.el(f"#rules-table tr[data-rule-ref='{flow.rule_ref}']")
    assert not ui.css(".rule-toggle"), "viewer offered Enable/Disable"
    ui.shot("viewer-rules")

    # Encrypted key: Show answers value null without keys:decrypt.
    ui.goto("#/keys")
    row = f"#keys-table tr[data-key-ref='{key['ref']}']"
    ui.el(f"{row} .key-show").click()
    ui.wait(lambda d: "no permission to decrypt" in ui.el(f"{row} td.key-value").text, desc="no permission text")
    assert "top-secret-value" not in ui.text()
    expect(api.post(f"/api/v1/executions/{running['id']}/cancel"), 200)


# ---------------------------------------------------------------------------------------- narrow

def test_narrow_screen(admin_ui, api):
    ui = admin_ui
    ex = api.execute("core.echo", {"message": "narrow"})
    ui.d.set_window_size(375, 800)
    ui.goto("#/executions")
    ui.el(f"#executions-table tr[data-execution-id='{ex['id']}']")
    ui.wait(lambda d: row_status(ui, ex["id"]) == "completed", 30, "completed")
    width = ui.js("return document.documentElement.clientWidth")
    assert ui.js("return document.documentElement.scrollWidth") <= width + 1, "the page scrolls sideways"
    for name in ("executions", "packs", "actions", "triggers", "rules", "keys", "inquiries"):
        link = ui.el(f"#nav-{name}")
        rect = link.rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= width + 1, f"nav-{name} off screen: {rect}"
    ui.shot("narrow-executions")
    ui.el("#nav-rules").click()
    ui.el("#rules-table")
    assert ui.js("return location.hash") == "#/rules"
    assert ui.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1, \
        "rules page scrolls sideways"
    ui.shot("narrow-rules")



# ------------------------------------------------------------------------------------- workflows

def test_workflow_detail_shows_child_tree(admin_ui, api):
    ui = admin_ui
    pack = api.create_pack(f"console_{uid(8)}")["ref"]
    api.create_action(f"{pack}.echo", 'printf "%s" "$msg"')
    definition = {"version": "1", "tasks": [
        {"name": "first", "action": f"{pack}.echo", "input": {"msg": "one"}, "next": [{"do": ["second"]}]},
        {"name": "second", "action": f"{pack}.echo", "input": {"msg": "two"}}]}
    expect(api.post("/api/v1/workflows", json={"ref": f"{pack}.flow", "pack_ref": pack, "label": "flow",
                                               "version": "1.0.0", "definition": definition}), 201)
    wf = api.execute(f"{pack}.flow", {})
    ui.goto(f"#/executions/{wf['id']}")
    ui.wait(lambda d: ui.el("#exec-status").get_attribute("data-status") == "completed", 30, "workflow completed")
    ui.wait(lambda d: len(ui.css("#exec-children li[data-execution-id]")) == 2, 10, "two child tasks")
    text = ui.el("#exec-children").text
    assert "first" in text and "second" in text, text
    assert len(ui.css("#exec-children .status[data-status='completed']")) == 2
    ui.shot("workflow-detail")
    # A child links back to its workflow.
    ui.el("#exec-children li a").click()
    ui.el("#lineage-parent")
    assert f"#{wf['id']}" in ui.el("#lineage-parent").text


# ----------------------------------------------------------------------------------- token refresh

def test_expired_access_token_is_refreshed(ui, server, admin_session):
    # A session whose access token is no longer accepted: the console refreshes it (POST /auth/refresh)
    # on the first 401 and carries on; the WebSocket reconnects with the new token.
    ui.use_session({**admin_session, "token": "not-a-valid-jwt"})
    ui.ws_open(15)
    stored = ui.js("return JSON.parse(sessionStorage.getItem('attune.session'))")
    assert stored["access_token"] != "not-a-valid-jwt"
    assert server.client(stored["access_token"]).get("/auth/me").status_code == 200


# ---------------------------------------------------------------------------------- live under load

def test_burst_of_executions_applied_in_batches(admin_ui, api):
    """80 webhook executions in a burst: each row settles to completed without a reload; notifications
    are applied in per-frame batches, and the table never holds more than a page."""
    ui = admin_ui
    flow = api.webhook_flow("true", prefix="console")
    ui.ws_open()
    ui.js("window.__noReload = 1")
    before = ui.js("return Object.assign({}, window.__attuneStats)")
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: api.fire(flow.key, {"i": i}), range(80)))
    execs = api.wait_rule_executions(flow.rule_ref, 80, timeout=60)
    newest = sorted(execs, key=lambda e: (e["created"], e["id"]), reverse=True)[:50]

    def settled(d):
        ids = d.execute_script("return Array.from(document.querySelectorAll('#executions-table tbody tr'))"
                               ".map(function (r) { return [Number(r.dataset.executionId), "
                               "r.querySelector('td.status').dataset.status]; })")
        shown = {i: s for i, s in ids}
        return len(ids) <= 50 and all(shown.get(e["id"]) == "completed" for e in newest)
    ui.wait(settled, 30, "the 50 newest executions completed in the table")
    assert ui.js("return window.__noReload") == 1
    after = ui.js("return window.__attuneStats")
    applied = after["notifications"] - before["notifications"]
    frames = after["frames"] - before["frames"]
    assert applied >= 80 * 2, after  # created + several status changes each
    assert frames < applied, f"{frames} batches for {applied} notifications: not batched"


# ------------------------------------------------------------------------------ filters and schemas

def test_filters_and_live_rows_respect_them(admin_ui, api):
    ui = admin_ui
    a = api.webhook_flow("true", prefix="console")
    b = api.webhook_flow("true", prefix="console", pack_ref=a.pack_ref)
    api.fire(a.key, {"n": 0})
    first = api.wait_rule_executions(a.rule_ref, 1)[0]
    ui.el("#filter-action").send_keys(a.action_ref)
    Select(ui.el("#filter-status")).select_by_visible_text("completed")
    ui.js("performance.clearMarks('attune:executions-first-page')")
    ui.el("#filter-apply").click()
    ui.wait(lambda d: d.execute_script(
        "return performance.getEntriesByName('attune:executions-first-page').length") == 1, desc="refetch mark")
    ui.wait(lambda d: [int(r.get_attribute("data-execution-id")) for r in ui.css("#executions-table tbody tr")]
            == [first["id"]], desc="only the matching execution")
    # Live: B's execution does not match the filter, A's next one does (once completed).
    api.fire(b.key, {"n": 1})
    api.fire(a.key, {"n": 2})
    execs_a = api.wait_rule_executions(a.rule_ref, 2)
    execs_b = api.wait_rule_executions(b.rule_ref, 1)
    new_a = max(e["id"] for e in execs_a)
    ui.wait(lambda d: row_status(ui, new_a) == "completed", 30, "A's new execution, live")
    assert row_status(ui, execs_b[0]["id"]) is None, "a row not matching the filters was added"
    assert all(td.get_attribute("data-status") == "completed" for td in ui.css("#executions-table td.status"))
    ui.el("#filter-clear").click()
    ui.wait(lambda d: row_status(ui, execs_b[0]["id"]) == "completed", desc="all rows after Clear")


def test_json_schema_style_form(admin_ui, api):
    ui = admin_ui
    pack = api.create_pack(f"console_{uid(8)}")["ref"]
    schema = {"type": "object", "required": ["target"],
              "properties": {"target": {"type": "string"},
                             "ratio": {"type": "number"},
                             "labels": {"type": "object"},
                             "hosts": {"type": "array"}}}
    ref = api.create_action(f"{pack}.js", "cat", param_schema=schema)["ref"]
    ui.goto(f"#/actions/{ref}")
    ui.el("#run-form")
    assert ui.el("#run-labels").tag_name == "textarea" and ui.el("#run-hosts").tag_name == "textarea"
    assert ui.el("#run-ratio").get_attribute("type") == "number"
    assert ui.el("#run-target").get_attribute("aria-required") == "true"
    ui.el("#run-target").send_keys("db")
    ui.el("#run-ratio").send_keys("0.5")
    ui.el("#run-labels").send_keys('{"env": "prod"')  # broken JSON: said at once, nothing sent
    ui.el("#run-submit").click()
    assert "JSON" in ui.el("[data-field-error='labels']").text
    ui.el("#run-labels").send_keys("}")
    ui.el("#run-hosts").send_keys('["a", "b"]')
    ui.el("#run-submit").click()
    ui.wait(lambda d: d.execute_script("return location.hash").startswith("#/executions/"), desc="the new execution")
    exec_id = int(ui.js("return location.hash").rsplit("/", 1)[1])
    config = api.get_data(f"/api/v1/executions/{exec_id}")["config"]
    assert config == {"target": "db", "ratio": 0.5, "labels": {"env": "prod"}, "hosts": ["a", "b"]}, config


# ------------------------------------------------------------------------------------- reconnect

def test_socket_reconnects_and_page_refetches(ui, api, admin_session):
    """The notifier connection drops and cannot come back for a while: #ws-status says so, the console retries
    with backoff, and once connected again re-fetches the page (showing what it missed), without a reload."""
    flow = api.webhook_flow("true", prefix="console")
    # A page-level hook on WebSocket: the test can drop the socket and refuse new ones.
    hook = ui.d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        (function () {
          var W = window.WebSocket;
          window.__sockets = [];
          window.__blockWs = false;
          function Hooked(url, protocols) {
            var w = new W(window.__blockWs ? 'ws://127.0.0.1:9/blocked' : url, protocols);
            window.__sockets.push(w);
            return w;
          }
          Hooked.prototype = W.prototype;
          ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].forEach(function (k) { Hooked[k] = W[k]; });
          window.WebSocket = Hooked;
        })();"""})
    try:
        ui.use_session(admin_session)
        ui.ws_open()
        ui.js("window.__noReload = 1; window.__blockWs = true; window.__sockets.forEach(function (s) { s.close(); })")
        ui.wait(lambda d: ui.el("#ws-status").get_attribute("data-state") in ("closed", "connecting"),
                desc="socket shown down")
        api.fire(flow.key, {"missed": True})
        ex = api.wait_rule_executions(flow.rule_ref, 1)[0]
        ui.wait(lambda d: len(ui.js("return window.__sockets")) >= 2, desc="a reconnect attempt (refused)")
        assert row_status(ui, ex["id"]) is None
        ui.js("window.__blockWs = false")
        ui.ws_open(30)
        ui.wait(lambda d: row_status(ui, ex["id"]) == "completed", desc="the missed execution after the re-fetch")
        assert ui.js("return window.__noReload") == 1
    finally:
        ui.d.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": hook["identifier"]})


def test_access_token_refreshed_before_expiry(ui, server, admin_session):
    # The stored expiry is near: the console refreshes ahead of it, without waiting for a 401.
    ui.use_session(admin_session)
    ui.js("var s = JSON.parse(sessionStorage.getItem('attune.session')); s.expires_at = Date.now() + 20000;"
          "sessionStorage.setItem('attune.session', JSON.stringify(s)); location.reload();")
    ui.el("#executions-table")
    ui.wait(lambda d: d.execute_script(
        "return JSON.parse(sessionStorage.getItem('attune.session')).access_token") != admin_session["token"],
        desc="a refreshed access token")
    stored = ui.js("return JSON.parse(sessionStorage.getItem('attune.session'))")
    assert stored["expires_at"] > ui.js("return Date.now()") + 600_000
    assert server.client(stored["access_token"]).get("/auth/me").status_code == 200
