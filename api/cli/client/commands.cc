#include "api/cli/client/commands.h"

#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "api/cli/client/errors.h"
#include "api/cli/client/follow.h"
#include "api/cli/client/keys.h"
#include "api/cli/client/output.h"
#include "api/cli/client/pack_archive.h"
#include "api/cli/client/params.h"
#include "api/cli/client/session.h"
#include "topology/core/time.h"

namespace attune::cli::client {

// Storage CLI11 writes into; one instance per process.
struct CommandOptions {
  GlobalOptions global;
  // login
  std::optional<std::string> user, password_file;
  bool password_stdin = false;
  double wait_ready = 0;
  // shared positional / filters
  std::string ref;
  int64_t id = 0;
  std::optional<int64_t> opt_id;
  std::vector<std::string> kv;
  std::optional<std::string> params_file, pack;
  bool wait = false, force = false, skip_tests = false, follow = false, enable = false;
  double timeout = 0;
  // execution list
  std::optional<std::string> status, action, rule, since;
  std::optional<int64_t> parent;
  int64_t limit = 50;
  // key set
  std::string value;
  bool encrypt = false, value_json = false;
  std::optional<int64_t> ttl;
};

namespace {

const char* kEnvHelp =
    "Environment: ATTUNE_API_URL (--url), ATTUNE_API_TOKEN (--token), ATTUNE_CONFIG_DIR "
    "(--config-dir),\nATTUNE_NOTIFIER_WS_URL (--ws-url), NO_COLOR (--no-color).";

std::string path_seg(const std::string& s) { return url_encode(s); }

std::string id_path(const char* base, int64_t id) { return std::string(base) + std::to_string(id); }

void out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int64_t jint(const nlohmann::json& obj, const char* key) {
  const auto& v = jget(obj, key);
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

std::string description_or_label(const nlohmann::json& obj) {
  const std::string d = jstr(obj, "description");
  return cell_text(d.empty() ? jget(obj, "label") : nlohmann::json(d));
}

Cell status_cell(const std::string& s) { return Cell{s, status_style(s)}; }

int64_t parse_ts_ms(const std::string& ts) { return parse_rfc3339_ms(ts).value_or(-1); }

std::string format_duration_ms(int64_t ms) {
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60000),
                  static_cast<long long>((ms / 1000) % 60));
  }
  return buf;
}

// Execution duration: result.duration_ms, else started_at → updated for terminal executions.
std::string execution_duration(const nlohmann::json& ex) {
  const auto& d = jget(jget(ex, "result"), "duration_ms");
  if (d.is_number()) return format_duration_ms(d.get<int64_t>());
  const int64_t start = parse_ts_ms(jstr(ex, "started_at"));
  const int64_t end = parse_ts_ms(jstr(ex, "updated"));
  if (start < 0 || end < start) return "-";
  if (!outcome_for_execution_status(jstr(ex, "status")).terminal) return "-";
  return format_duration_ms(end - start);
}

std::string read_file_or_usage(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) usage_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

termios g_saved_termios{};

// Ctrl-C at a password prompt: give the terminal its echo back before leaving.
void restore_echo_and_exit(int) {
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  const char nl = '\n';
  (void)!::write(STDERR_FILENO, &nl, 1);
  ::_exit(static_cast<int>(ExitCode::kInterrupted));
}

std::string prompt_line(const char* prompt, bool echo) {
  std::fprintf(stderr, "%s", prompt);
  std::fflush(stderr);
  const bool tty = ::tcgetattr(STDIN_FILENO, &g_saved_termios) == 0;
  struct sigaction old_int {};
  if (tty && !echo) {
    struct sigaction sa {};
    sa.sa_handler = restore_echo_and_exit;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int);
    termios quiet = g_saved_termios;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty && !echo) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    ::sigaction(SIGINT, &old_int, nullptr);
    std::fprintf(stderr, "\n");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

void print_list(Session& s, const nlohmann::json& rows, Table table,
                const std::function<std::vector<Cell>(const nlohmann::json&)>& row) {
  if (s.json()) {
    Session::print_json(rows);
    return;
  }
  for (const auto& r : rows) table.add_row(row(r));
  out(table.render(s.color()));
}

void print_fields(Session& s, const std::vector<std::pair<std::string, Cell>>& fields) {
  out(render_fields(fields, s.color()));
}

std::string pretty(const nlohmann::json& v) {
  return v.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ------------------------------------------------------------------------------------ auth

int cmd_login(Session& s, CommandOptions& o) {
  std::optional<std::string> login = o.user;
  std::string password;
  if (o.password_file) {
    auto pf = parse_password_file(read_file_or_usage(*o.password_file), o.user);
    if (!login && pf.login) login = pf.login;
    password = pf.password;
  } else if (o.password_stdin) {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    password = ss.str();
    if (!password.empty() && password.back() == '\n') password.pop_back();
    if (!password.empty() && password.back() == '\r') password.pop_back();
  }
  const bool tty = ::isatty(STDIN_FILENO) == 1;
  if (!login && s.credentials() && !s.credentials()->login.empty()) login = s.credentials()->login;
  if (!login) {
    if (!tty || o.password_stdin) usage_error("no login: pass --user LOGIN");
    login = prompt_line("Login: ", true);
  }
  if (!o.password_file && !o.password_stdin) {
    if (!tty) usage_error("no password: use --password-stdin or --password-file FILE");
    password = prompt_line("Password: ", false);
  }
  if (login->empty()) usage_error("empty login");
  const auto data = s.login(*login, password, o.wait_ready);
  if (s.json()) {
    Session::print_json({{"url", s.url()},
                         {"user", jget(data, "user")},
                         {"token_type", jget(data, "token_type")},
                         {"expires_in", jget(data, "expires_in")}});
  } else {
    out("Logged in to " + s.url() + " as " + *login + " (credentials in " +
        credentials_path(s.config_dir()) + ")\n");
  }
  return 0;
}

int cmd_logout(Session& s) {
  const bool removed = delete_credentials(s.config_dir());
  if (s.json()) {
    Session::print_json({{"logged_out", removed}});
  } else {
    out(removed ? "Logged out (removed " + credentials_path(s.config_dir()) + ")\n"
                : "Not logged in\n");
  }
  return 0;
}

int cmd_whoami(Session& s) {
  const auto me = s.data("GET", "/auth/me");
  if (s.json()) {
    Session::print_json(me);
    return 0;
  }
  std::string sets;
  for (const auto& r : jget(me, "assigned_permission_set_refs")) {
    if (!sets.empty()) sets += ", ";
    sets += r.is_string() ? r.get<std::string>() : r.dump();
  }
  print_fields(s, {{"Login", {jstr(me, "login")}},
                   {"Display name", {cell_text(jget(me, "display_name"), 200)}},
                   {"Permission sets", {sets.empty() ? "-" : sets}},
                   {"Server", {s.url()}}});
  return 0;
}

// ------------------------------------------------------------------------------------ packs

int cmd_pack_install(Session& s, CommandOptions& o) {
  namespace fs = std::filesystem;
  std::string archive, filename;
  std::error_code ec;
  if (fs::is_directory(o.ref, ec)) {
    std::string error;
    if (!fs::exists(fs::path(o.ref) / "pack.yaml") && !fs::exists(fs::path(o.ref) / "pack.yml")) {
      usage_error(o.ref + " has no pack.yaml");
    }
    if (!archive_directory(o.ref, &archive, &error)) usage_error(error);
    filename = fs::path(o.ref).filename().string() + ".tar.gz";
    if (filename == ".tar.gz") filename = "pack.tar.gz";
  } else {
    archive = read_file_or_usage(o.ref);
    filename = fs::path(o.ref).filename().string();
  }
  std::vector<MultipartPart> parts{
      {"pack", archive, filename, "application/gzip"},
      {"force", o.force ? "true" : "false", "", ""},
      {"skip_tests", o.skip_tests ? "true" : "false", "", ""},
  };
  const auto body = s.upload("/api/v1/packs/upload", parts);
  const auto& data = jget(body, "data");
  if (s.json()) {
    Session::print_json(data);
    return 0;
  }
  const auto& pack = jget(data, "pack");
  std::string counts;
  const auto& comps = jget(data, "components");
  if (comps.is_object()) {
    for (const auto& [k, v] : comps.items()) {
      if (!counts.empty()) counts += ", ";
      counts += (v.is_number() ? v.dump() : cell_text(v)) + " " + k;
    }
  }
  out("Installed pack " + jstr(pack, "ref") + " " + jstr(pack, "version") +
      (counts.empty() ? "" : ": " + counts) + "\n");
  return 0;
}

int cmd_pack_list(Session& s) {
  const auto rows = s.list("/api/v1/packs", {});
  print_list(s, rows, Table({"REF", "VERSION", "INSTALLED BY", "LABEL"}),
             [](const nlohmann::json& p) {
               return std::vector<Cell>{{jstr(p, "ref")},
                                        {jstr(p, "version")},
                                        {cell_text(jget(p, "installation_method"))},
                                        {cell_text(jget(p, "label"))}};
             });
  return 0;
}

int cmd_pack_show(Session& s, CommandOptions& o) {
  const auto p = s.data("GET", "/api/v1/packs/" + path_seg(o.ref));
  if (s.json()) {
    Session::print_json(p);
    return 0;
  }
  const auto& env = jget(p, "environment");
  print_fields(
      s, {{"Ref", {jstr(p, "ref")}},
          {"Label", {cell_text(jget(p, "label"), 200)}},
          {"Version", {jstr(p, "version")}},
          {"Description", {cell_text(jget(p, "description"), 200)}},
          {"Installed",
           {cell_text(jget(p, "installation_method")) + " " + cell_text(jget(p, "installed_at"))}},
          {"Storage path", {cell_text(jget(p, "storage_path"), 200)}},
          {"Tags", {cell_text(jget(p, "tags"), 200)}},
          {"Environment", env.is_null() ? Cell{"-"} : status_cell(jstr(env, "status"))}});
  return 0;
}

int cmd_pack_remove(Session& s, CommandOptions& o) {
  const auto body = s.call("DELETE", "/api/v1/packs/" + path_seg(o.ref));
  if (s.json()) {
    Session::print_json(body);
  } else {
    out("Removed pack " + o.ref + "\n");
  }
  return 0;
}

// ------------------------------------------------------------------------------------ actions

void print_params_table(Session& s, const nlohmann::json& schema) {
  const auto specs = schema_params(schema);
  if (specs.empty()) {
    out("Parameters: none\n");
    return;
  }
  out("Parameters:\n");
  Table t({"NAME", "TYPE", "REQUIRED", "SECRET", "DEFAULT", "DESCRIPTION"});
  for (const auto& p : specs) {
    t.add_row({{p.name},
               {p.type.empty() ? "any" : p.type},
               {p.required ? "yes" : "no"},
               {p.secret ? "yes" : ""},
               {p.default_value.is_null() ? "" : cell_text(p.default_value, 30)},
               {cell_text(nlohmann::json(p.description), 60)}});
  }
  out(t.render(s.color()));
}

int cmd_action_list(Session& s, CommandOptions& o) {
  Query q;
  if (o.pack) q.emplace_back("pack_ref", *o.pack);
  const auto rows = s.list("/api/v1/actions", q);
  print_list(s, rows, Table({"REF", "RUNTIME", "ENABLED", "DESCRIPTION"}),
             [](const nlohmann::json& a) {
               return std::vector<Cell>{{jstr(a, "ref")},
                                        {cell_text(jget(a, "runtime_ref"))},
                                        {cell_text(jget(a, "enabled"))},
                                        {description_or_label(a)}};
             });
  return 0;
}

int cmd_action_show(Session& s, CommandOptions& o) {
  const auto a = s.data("GET", "/api/v1/actions/" + path_seg(o.ref));
  if (s.json()) {
    Session::print_json(a);
    return 0;
  }
  print_fields(s, {{"Ref", {jstr(a, "ref")}},
                   {"Label", {cell_text(jget(a, "label"), 200)}},
                   {"Description", {cell_text(jget(a, "description"), 200)}},
                   {"Runtime", {cell_text(jget(a, "runtime_ref"))}},
                   {"Entrypoint", {cell_text(jget(a, "entrypoint"), 100)}},
                   {"Enabled", {cell_text(jget(a, "enabled"))}},
                   {"Workflow", {jget(a, "workflow_def").is_null() ? "no" : "yes"}},
                   {"Timeout", {cell_text(jget(a, "timeout_seconds"))}}});
  print_params_table(s, jget(a, "param_schema"));
  return 0;
}

void print_tree(Session& s, int64_t parent, int depth) {
  if (depth > 5) return;
  Query q{{"parent", std::to_string(parent)}, {"order", "asc"}};
  const auto children = s.list("/api/v1/executions", q, 1000);
  for (size_t i = 0; i < children.size(); ++i) {
    const auto& c = children[i];
    std::string task = jstr(jget(c, "workflow_task"), "task_name");
    if (task.empty()) task = jstr(c, "action_ref");
    const bool last = i + 1 == children.size();
    const std::string indent(static_cast<size_t>(depth) * 3, ' ');
    out(indent + (last ? "└─ " : "├─ ") + task + "  " +
        styled(jstr(c, "status"), status_style(jstr(c, "status")), s.color()) + "  (" +
        std::to_string(jint(c, "id")) + " " + jstr(c, "action_ref") + ")\n");
    print_tree(s, jint(c, "id"), depth + 1);
  }
}

int run_action(Session& s, CommandOptions& o, bool workflow) {
  const auto action = s.data("GET", "/api/v1/actions/" + path_seg(o.ref));
  auto params = o.params_file ? load_params_file(*o.params_file) : nlohmann::json::object();
  const auto given = parse_key_values(o.kv, jget(action, "param_schema"));
  for (const auto& [k, v] : given.items()) params[k] = v;
  std::unique_ptr<NotifierConnection> conn;
  if (o.wait) {
    // Subscribed before the execution exists, so no status change can be missed.
    std::string why;
    conn = s.connect_notifier(&why);
    if (conn &&
        !subscribe_synced(*conn, "entity_type:execution", std::chrono::milliseconds(3000))) {
      conn.reset();
    }
  }
  const std::string ref = jstr(action, "ref").empty() ? o.ref : jstr(action, "ref");
  const auto ex = s.data("POST", "/api/v1/executions/execute",
                         nlohmann::json{{"action_ref", ref}, {"parameters", params}});
  const int64_t id = jint(ex, "id");
  if (!o.wait) {
    if (s.json()) {
      Session::print_json(ex);
    } else {
      out("Execution " + std::to_string(id) + " " +
          styled(jstr(ex, "status"), status_style(jstr(ex, "status")), s.color()) +
          "  (follow: attune execution tail " + std::to_string(id) + " --follow)\n");
    }
    return 0;
  }
  const auto done = wait_for_execution(s, id, WaitOptions{o.timeout}, std::move(conn));
  if (workflow && !s.json()) {
    out("Workflow execution " + std::to_string(id) + " " +
        styled(jstr(done, "status"), status_style(jstr(done, "status")), s.color()) + "\n");
    print_tree(s, id, 0);
  }
  return report_execution(s, done);
}

// ------------------------------------------------------------------------------------ executions

int cmd_execution_list(Session& s, CommandOptions& o) {
  Query q;
  if (o.status) q.emplace_back("status", *o.status);
  if (o.action) q.emplace_back("action_ref", *o.action);
  if (o.rule) q.emplace_back("rule_ref", *o.rule);
  if (o.pack) q.emplace_back("pack_ref", *o.pack);
  if (o.parent) q.emplace_back("parent", std::to_string(*o.parent));
  if (o.since) q.emplace_back("created_after", *o.since);
  const auto rows = s.list("/api/v1/executions", q, static_cast<size_t>(o.limit));
  print_list(s, rows, Table({"ID", "ACTION", "STATUS", "CREATED", "DURATION", "RULE"}),
             [](const nlohmann::json& e) {
               return std::vector<Cell>{
                   {std::to_string(jint(e, "id"))}, {jstr(e, "action_ref")},
                   status_cell(jstr(e, "status")),  {jstr(e, "created")},
                   {execution_duration(e)},         {cell_text(jget(e, "rule_ref"))}};
             });
  return 0;
}

int cmd_execution_show(Session& s, CommandOptions& o) {
  const auto e = s.data("GET", id_path("/api/v1/executions/", o.id));
  if (s.json()) {
    Session::print_json(e);
    return 0;
  }
  std::vector<std::pair<std::string, Cell>> f{
      {"ID", {std::to_string(jint(e, "id"))}},         {"Action", {jstr(e, "action_ref")}},
      {"Status", status_cell(jstr(e, "status"))},      {"Created", {cell_text(jget(e, "created"))}},
      {"Started", {cell_text(jget(e, "started_at"))}}, {"Updated", {cell_text(jget(e, "updated"))}},
      {"Duration", {execution_duration(e)}},
  };
  if (!jget(e, "parent").is_null()) f.push_back({"Parent", {cell_text(jget(e, "parent"))}});
  if (const auto& wt = jget(e, "workflow_task"); wt.is_object()) {
    f.push_back({"Workflow task", {jstr(wt, "task_name")}});
  }
  if (jint(e, "retry_count") > 0) {
    f.push_back({"Retry",
                 {std::to_string(jint(e, "retry_count")) + " of execution " +
                  cell_text(jget(e, "original_execution"))}});
  }
  if (const int64_t enf = jint(e, "enforcement"); enf > 0) {
    f.push_back({"Enforcement", {std::to_string(enf)}});
    try {
      const auto en = s.data("GET", id_path("/api/v1/enforcements/", enf));
      f.push_back({"Rule", {cell_text(jget(en, "rule_ref"))}});
      f.push_back({"Trigger", {cell_text(jget(en, "trigger_ref"))}});
      f.push_back({"Event", {cell_text(jget(en, "event"))}});
    } catch (const CliError& err) {
      if (err.http_status() == 0) throw;  // lineage is best effort; transport errors are not
    }
  }
  print_fields(s, f);
  const auto& params = jget(e, "config");
  out(params.is_null() || params.empty() ? std::string("Parameters: none\n")
                                         : "Parameters:\n" + pretty(params) + "\n");
  const auto& result = jget(e, "result");
  if (!result.is_null()) {
    const auto& so = jget(result, "stdout");
    const auto& se = jget(result, "stderr");
    if (so.is_string() && !so.get<std::string>().empty()) {
      out(styled("stdout:", Style::kBold, s.color()) + "\n" + so.get<std::string>() +
          (so.get<std::string>().back() == '\n' ? "" : "\n"));
    }
    if (se.is_string() && !se.get<std::string>().empty()) {
      out(styled("stderr:", Style::kBold, s.color()) + "\n" + se.get<std::string>() +
          (se.get<std::string>().back() == '\n' ? "" : "\n"));
    }
    if (const auto& err = jget(result, "error"); err.is_string()) {
      out(styled("error:", Style::kBold, s.color()) + " " + err.get<std::string>() + "\n");
    }
    if (!so.is_string() && !se.is_string()) out("Result:\n" + pretty(result) + "\n");
  }
  return 0;
}

int cmd_execution_cancel(Session& s, CommandOptions& o) {
  const auto e =
      s.data("POST", id_path("/api/v1/executions/", o.id) + "/cancel", nlohmann::json::object());
  if (s.json()) {
    Session::print_json(e);
  } else {
    out("Execution " + std::to_string(o.id) + " " +
        styled(jstr(e, "status"), status_style(jstr(e, "status")), s.color()) + "\n");
  }
  return 0;
}

int cmd_execution_tail(Session& s, CommandOptions& o) {
  if (o.opt_id) {
    if (o.follow) {
      const auto done = wait_for_execution(s, *o.opt_id, WaitOptions{o.timeout}, nullptr);
      return report_execution(s, done);
    }
    const auto e = s.data("GET", id_path("/api/v1/executions/", *o.opt_id));
    if (outcome_for_execution_status(jstr(e, "status")).terminal) return report_execution(s, e);
    if (s.json()) {
      Session::print_json(e);
    } else {
      out("Execution " + std::to_string(*o.opt_id) + " is " + status_cell(jstr(e, "status")).text +
          " (add --follow to wait for it)\n");
    }
    return 0;
  }
  const auto latest = [&s, &o] {
    const auto rows =
        s.list("/api/v1/executions", {}, static_cast<size_t>(std::min<int64_t>(o.limit, 1000)));
    if (s.json() && !o.follow) {
      Session::print_json(rows);
      return;
    }
    if (s.json()) return;  // --follow --json: notifications only, one per line
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
      out(change_line(jstr(*it, "updated"), jint(*it, "id"), jstr(*it, "action_ref"), "",
                      jstr(*it, "status"), s.color()) +
          "\n");
    }
  };
  if (!o.follow) {
    latest();
    return 0;
  }
  return follow_all_executions(s, o.timeout, latest);
}

// ------------------------------------------------------------------------------------ rules

int cmd_rule_list(Session& s, CommandOptions& o) {
  Query q;
  if (o.pack) q.emplace_back("pack_ref", *o.pack);
  const auto rows = s.list("/api/v1/rules", q);
  print_list(s, rows, Table({"REF", "TRIGGER", "ACTION", "ENABLED"}), [](const nlohmann::json& r) {
    const bool on = jget(r, "enabled").is_boolean() && jget(r, "enabled").get<bool>();
    return std::vector<Cell>{{jstr(r, "ref")},
                             {jstr(r, "trigger_ref")},
                             {jstr(r, "action_ref")},
                             {on ? "yes" : "no", on ? Style::kGreen : Style::kDim}};
  });
  return 0;
}

int cmd_rule_show(Session& s, CommandOptions& o) {
  const auto r = s.data("GET", "/api/v1/rules/" + path_seg(o.ref));
  if (s.json()) {
    Session::print_json(r);
    return 0;
  }
  print_fields(s, {{"Ref", {jstr(r, "ref")}},
                   {"Label", {cell_text(jget(r, "label"), 200)}},
                   {"Description", {cell_text(jget(r, "description"), 200)}},
                   {"Trigger", {jstr(r, "trigger_ref")}},
                   {"Action", {jstr(r, "action_ref")}},
                   {"Enabled", {cell_text(jget(r, "enabled"))}},
                   {"Conditions", {cell_text(jget(r, "conditions"), 200)}},
                   {"Action params", {cell_text(jget(r, "action_params"), 200)}},
                   {"Trigger params", {cell_text(jget(r, "trigger_params"), 200)}}});
  return 0;
}

int cmd_rule_toggle(Session& s, CommandOptions& o, bool enable) {
  const auto r =
      s.data("POST", "/api/v1/rules/" + path_seg(o.ref) + (enable ? "/enable" : "/disable"),
             nlohmann::json::object());
  if (s.json()) {
    Session::print_json(r);
  } else {
    out("Rule " + jstr(r, "ref") + (enable ? " enabled\n" : " disabled\n"));
  }
  return 0;
}

// ------------------------------------------------------------------------------------ triggers

int cmd_trigger_list(Session& s, CommandOptions& o) {
  Query q;
  if (o.pack) q.emplace_back("pack_ref", *o.pack);
  const auto rows = s.list("/api/v1/triggers", q);
  print_list(s, rows, Table({"REF", "WEBHOOK", "SENSOR", "DESCRIPTION"}),
             [](const nlohmann::json& t) {
               return std::vector<Cell>{{jstr(t, "ref")},
                                        {cell_text(jget(t, "webhook_enabled"))},
                                        {cell_text(jget(t, "sensor_ref"))},
                                        {description_or_label(t)}};
             });
  return 0;
}

int cmd_trigger_webhook_url(Session& s, CommandOptions& o) {
  auto t = s.data("GET", "/api/v1/triggers/" + path_seg(o.ref));
  const bool enabled =
      jget(t, "webhook_enabled").is_boolean() && jget(t, "webhook_enabled").get<bool>();
  if (!enabled || jstr(t, "webhook_key").empty()) {
    if (!o.enable) {
      throw CliError(ExitCode::kApiRefused, "webhooks are disabled for trigger " + jstr(t, "ref") +
                                                "; run `attune trigger webhook-url " + o.ref +
                                                " --enable` to enable them");
    }
    t = s.data("POST", "/api/v1/triggers/" + path_seg(o.ref) + "/webhooks/enable",
               nlohmann::json::object());
  }
  const std::string url = s.url() + "/api/v1/webhooks/" + jstr(t, "webhook_key");
  if (s.json()) {
    Session::print_json(
        {{"url", url}, {"trigger_ref", jget(t, "ref")}, {"webhook_key", jget(t, "webhook_key")}});
  } else {
    out(url + "\n");
  }
  return 0;
}

// ------------------------------------------------------------------------------------ keys

int cmd_key_list(Session& s) {
  const auto rows = s.list("/api/v1/keys", {});
  print_list(s, rows, Table({"REF", "OWNER", "ENCRYPTED", "EXPIRES"}), [](const nlohmann::json& k) {
    return std::vector<Cell>{{jstr(k, "ref")},
                             {cell_text(jget(k, "owner_type"))},
                             {cell_text(jget(k, "encrypted"))},
                             {cell_text(jget(k, "expires_at"))}};
  });
  return 0;
}

int cmd_key_get(Session& s, CommandOptions& o) {
  const auto k = s.data("GET", "/api/v1/keys/" + path_seg(o.ref));
  if (s.json()) {
    Session::print_json(k);
    return 0;
  }
  const auto& v = jget(k, "value");
  if (v.is_null() && jget(k, "encrypted").is_boolean() && jget(k, "encrypted").get<bool>()) {
    throw CliError(
        ExitCode::kApiRefused,
        "key " + jstr(k, "ref") + " is encrypted and you may not decrypt it (keys:decrypt)");
  }
  out((v.is_string() ? v.get<std::string>() : v.dump()) + "\n");
  return 0;
}

int cmd_key_set(Session& s, CommandOptions& o) {
  nlohmann::json value = o.value;
  if (o.value_json) {
    value = nlohmann::json::parse(o.value, nullptr, false);
    if (value.is_discarded()) usage_error("--value-json: VALUE is not valid JSON");
  }
  const std::string path = "/api/v1/keys/" + path_seg(o.ref);
  const auto existing = s.get_if_exists(path);
  nlohmann::json k;
  if (existing) {
    nlohmann::json body{{"value", value}, {"encrypted", o.encrypt}};
    if (o.ttl) body["ttl_seconds"] = *o.ttl;
    k = s.data("PUT", path, body);
  } else {
    auto body = key_create_body(o.ref);
    body["value"] = value;
    body["encrypted"] = o.encrypt;
    if (o.ttl) body["ttl_seconds"] = *o.ttl;
    k = s.data("POST", "/api/v1/keys", body);
  }
  if (s.json()) {
    Session::print_json(k);
  } else {
    out("Key " + jstr(k, "ref") + (existing ? " updated" : " created") +
        (o.encrypt ? " (encrypted)\n" : "\n"));
  }
  return 0;
}

int cmd_key_delete(Session& s, CommandOptions& o) {
  const auto body = s.call("DELETE", "/api/v1/keys/" + path_seg(o.ref));
  if (s.json()) {
    Session::print_json(body);
  } else {
    out("Key " + o.ref + " deleted\n");
  }
  return 0;
}

// ------------------------------------------------------------------------------------ inquiries

int cmd_inquiry_list(Session& s, CommandOptions& o) {
  Query q;
  if (o.status) q.emplace_back("status", *o.status);
  const auto rows = s.list("/api/v1/inquiries", q);
  print_list(s, rows, Table({"ID", "STATUS", "EXECUTION", "PROMPT", "CREATED"}),
             [](const nlohmann::json& i) {
               return std::vector<Cell>{{std::to_string(jint(i, "id"))},
                                        status_cell(jstr(i, "status")),
                                        {cell_text(jget(i, "execution"))},
                                        {cell_text(jget(i, "prompt"), 50)},
                                        {jstr(i, "created")}};
             });
  return 0;
}

int cmd_inquiry_respond(Session& s, CommandOptions& o) {
  const std::string path = id_path("/api/v1/inquiries/", o.id);
  const auto inquiry = s.data("GET", path);
  const auto response = parse_key_values(o.kv, jget(inquiry, "response_schema"));
  const auto r = s.data("POST", path + "/respond", nlohmann::json{{"response", response}});
  if (s.json()) {
    Session::print_json(r);
  } else {
    out("Inquiry " + std::to_string(o.id) + " " + status_cell(jstr(r, "status")).text + "\n");
  }
  return 0;
}

// ------------------------------------------------------------------------------------ workflows

int cmd_workflow_list(Session& s, CommandOptions& o) {
  Query q;
  if (o.pack) q.emplace_back("pack_ref", *o.pack);
  const auto rows = s.list("/api/v1/workflows", q);
  print_list(s, rows, Table({"REF", "VERSION", "ENABLED", "LABEL"}), [](const nlohmann::json& w) {
    return std::vector<Cell>{{jstr(w, "ref")},
                             {cell_text(jget(w, "version"))},
                             {cell_text(jget(w, "enabled"))},
                             {cell_text(jget(w, "label"))}};
  });
  return 0;
}

int cmd_workflow_show(Session& s, CommandOptions& o) {
  const auto w = s.data("GET", "/api/v1/workflows/" + path_seg(o.ref));
  if (s.json()) {
    Session::print_json(w);
    return 0;
  }
  print_fields(s, {{"Ref", {jstr(w, "ref")}},
                   {"Label", {cell_text(jget(w, "label"), 200)}},
                   {"Description", {cell_text(jget(w, "description"), 200)}},
                   {"Version", {cell_text(jget(w, "version"))}},
                   {"Enabled", {cell_text(jget(w, "enabled"))}}});
  print_params_table(s, jget(w, "param_schema"));
  const auto& tasks = jget(jget(w, "definition"), "tasks");
  if (tasks.is_array()) {
    Table t({"TASK", "TYPE", "ACTION"});
    for (const auto& task : tasks) {
      const auto& type = jget(task, "type");
      t.add_row({{jstr(task, "name")},
                 {type.is_null() ? "action" : cell_text(type)},
                 {cell_text(jget(task, "action"))}});
    }
    out("Tasks:\n" + t.render(s.color()));
  }
  return 0;
}

void add_globals(CLI::App* app, GlobalOptions& g) {
  const char* grp = "Global options";
  // Environment fallbacks are read by Session, not CLI11 envname: every leaf binds the same
  // storage, and CLI11 would let an unselected leaf's env value overwrite a given option.
  app->add_option("--url", g.url,
                  "API base URL (env ATTUNE_API_URL; default: the URL saved by `attune login`, "
                  "else " +
                      std::string(kDefaultUrl) + ")")
      ->group(grp);
  app->add_option("--token", g.token,
                  "Access token to use as is, no refresh (env ATTUNE_API_TOKEN)")
      ->group(grp);
  app->add_option("--config-dir", g.config_dir,
                  "Where credentials.json lives (env ATTUNE_CONFIG_DIR; default "
                  "$XDG_CONFIG_HOME/attune or ~/.config/attune)")
      ->group(grp);
  app->add_option("--ws-url", g.ws_url,
                  "Notifier WebSocket URL (env ATTUNE_NOTIFIER_WS_URL; default: websocket_url of "
                  "GET /health/detailed, else ws://<api host>:8081/ws)")
      ->group(grp);
  app->add_flag("--json", g.json, "Print the API's data as JSON (errors as JSON on stderr)")
      ->group(grp);
  app->add_flag("--no-color", g.no_color, "No ANSI colours (also NO_COLOR=1)")->group(grp);
}

}  // namespace

ClientCommands::ClientCommands(CLI::App& app) : o_(std::make_unique<CommandOptions>()) {
  auto& o = *o_;
  const std::string footer = std::string(kExitCodesHelp) + "\n" + kEnvHelp;
  app.footer(footer);

  auto group = [&](const std::string& name, const std::string& help) {
    auto* g = app.add_subcommand(name, help);
    g->require_subcommand(1);
    g->footer(footer);
    return g;
  };

  // login / logout / whoami
  auto* login =
      leaf(&app, "login",
           "Log in (POST /auth/login) and save the tokens to <config-dir>/credentials.json",
           [this](Session& s) { return cmd_login(s, *o_); });
  login->add_option("--user,-u", o.user,
                    "Login name (default: from --password-file, the saved login, or a prompt)");
  auto* pstdin =
      login->add_flag("--password-stdin", o.password_stdin, "Read the password from stdin");
  login
      ->add_option("--password-file", o.password_file,
                   "Read the password from FILE: a bare password or login:password (the "
                   "server's attune-data/admin-password)")
      ->type_name("FILE")
      ->excludes(pstdin);
  login
      ->add_option("--wait-ready", o.wait_ready,
                   "Retry while the server refuses connections, up to SECONDS (for scripts that "
                   "just started `attune serve`)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 3600.0).description(""));
  leaf(&app, "logout", "Forget the saved credentials", [](Session& s) { return cmd_logout(s); });
  leaf(&app, "whoami", "Show the logged-in identity (GET /auth/me)",
       [](Session& s) { return cmd_whoami(s); });

  // pack
  auto* pack = group("pack", "Install, list, show and remove packs");
  auto* pi = leaf(pack, "install",
                  "Upload a pack directory (archived in memory) or a .tar.gz (POST /packs/upload)",
                  [this](Session& s) { return cmd_pack_install(s, *o_); });
  pi->add_option("path", o.ref, "Pack directory (with pack.yaml) or archive FILE.tar.gz")
      ->required();
  pi->add_flag("--force", o.force, "Replace an installed pack of the same ref");
  pi->add_flag("--skip-tests", o.skip_tests, "Skip pack tests (accepted, ignored by the server)");
  leaf(pack, "list", "List packs", [](Session& s) { return cmd_pack_list(s); });
  leaf(pack, "show", "Show a pack", [this](Session& s) { return cmd_pack_show(s, *o_); })
      ->add_option("ref", o.ref, "Pack ref or id")
      ->required();
  leaf(pack, "remove", "Remove a pack and all its components",
       [this](Session& s) { return cmd_pack_remove(s, *o_); })
      ->add_option("ref", o.ref, "Pack ref or id")
      ->required();

  // action
  auto add_run_options = [&](CLI::App* run, const char* what) {
    run->add_option("ref", o.ref, std::string(what) + " ref or id")->required();
    run->add_option("params", o.kv,
                    "Parameters key=value, typed by the parameter schema (string stays text; "
                    "integer/number/boolean/object/array parsed as JSON or YAML)")
        ->type_name("KEY=VALUE");
    run->add_option("--params-file", o.params_file,
                    "Parameters from a .json or .yaml file (key=value wins)")
        ->type_name("FILE");
    run->add_flag("--wait,-w", o.wait, "Wait for the end, print the output, exit by status");
    run->add_option("--timeout", o.timeout, "With --wait: give up after SECONDS (exit 8)")
        ->type_name("SECONDS")
        ->check(CLI::Range(0.0, 1e9).description(""));
  };
  auto* action = group("action", "List, show and run actions");
  leaf(action, "list", "List actions", [this](Session& s) {
    return cmd_action_list(s, *o_);
  })->add_option("--pack", o.pack, "Only this pack's actions");
  leaf(action, "show", "Show an action and its parameters",
       [this](Session& s) { return cmd_action_show(s, *o_); })
      ->add_option("ref", o.ref, "Action ref or id")
      ->required();
  add_run_options(leaf(action, "run", "Execute an action (POST /executions/execute)",
                       [this](Session& s) { return run_action(s, *o_, false); }),
                  "Action");

  // execution
  auto* exec = group("execution", "List, show, cancel and follow executions");
  auto* el = leaf(exec, "list", "List executions, newest first",
                  [this](Session& s) { return cmd_execution_list(s, *o_); });
  el->add_option("--status", o.status, "Status or comma list (e.g. failed,timeout)");
  el->add_option("--action", o.action, "Action ref");
  el->add_option("--rule", o.rule, "Rule ref");
  el->add_option("--pack", o.pack, "Pack ref");
  el->add_option("--parent", o.parent, "Parent execution id (workflow children)");
  el->add_option("--since", o.since, "Created after this RFC 3339 time");
  el->add_option("--limit", o.limit, "At most N rows (default 50)")
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}).description(""));
  leaf(exec, "show", "Show an execution: parameters, output, lineage",
       [this](Session& s) { return cmd_execution_show(s, *o_); })
      ->add_option("id", o.id, "Execution id")
      ->required();
  leaf(exec, "cancel", "Cancel an execution",
       [this](Session& s) { return cmd_execution_cancel(s, *o_); })
      ->add_option("id", o.id, "Execution id")
      ->required();
  auto* et = leaf(exec, "tail",
                  "Without ID: the latest executions, then with --follow one line per change "
                  "until Ctrl-C. With ID: its output; with --follow wait for its end and exit by "
                  "status.",
                  [this](Session& s) { return cmd_execution_tail(s, *o_); });
  et->add_option("id", o.opt_id, "Execution id");
  et->add_flag("--follow,-f", o.follow, "Keep following");
  et->add_option("--limit", o.limit, "Latest executions shown first (default 50)")
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}).description(""));
  et->add_option("--timeout", o.timeout,
                 "--follow for at most SECONDS: with ID give up then (exit 8), without ID stop "
                 "following (exit 0)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 1e9).description(""));

  // rule
  auto* rule = group("rule", "List, show, enable and disable rules");
  leaf(rule, "list", "List rules", [this](Session& s) {
    return cmd_rule_list(s, *o_);
  })->add_option("--pack", o.pack, "Only this pack's rules");
  leaf(rule, "show", "Show a rule", [this](Session& s) { return cmd_rule_show(s, *o_); })
      ->add_option("ref", o.ref, "Rule ref or id")
      ->required();
  leaf(rule, "enable", "Enable a rule",
       [this](Session& s) { return cmd_rule_toggle(s, *o_, true); })
      ->add_option("ref", o.ref, "Rule ref or id")
      ->required();
  leaf(rule, "disable", "Disable a rule",
       [this](Session& s) { return cmd_rule_toggle(s, *o_, false); })
      ->add_option("ref", o.ref, "Rule ref or id")
      ->required();

  // trigger
  auto* trigger = group("trigger", "List triggers and get webhook URLs");
  leaf(trigger, "list", "List triggers", [this](Session& s) {
    return cmd_trigger_list(s, *o_);
  })->add_option("--pack", o.pack, "Only this pack's triggers");
  auto* wh = leaf(trigger, "webhook-url", "Print the trigger's webhook URL",
                  [this](Session& s) { return cmd_trigger_webhook_url(s, *o_); });
  wh->add_option("ref", o.ref, "Trigger ref or id")->required();
  wh->add_flag("--enable", o.enable, "Enable webhooks first when they are disabled");

  // key
  auto* key = group("key", "Manage keys (the datastore)");
  leaf(key, "list", "List keys (values are never listed)",
       [](Session& s) { return cmd_key_list(s); });
  leaf(key, "get", "Print a key's value", [this](Session& s) { return cmd_key_get(s, *o_); })
      ->add_option("ref", o.ref, "Key ref (a ref without '.' means system.<ref>)")
      ->required();
  auto* ks = leaf(key, "set", "Create or update a key",
                  [this](Session& s) { return cmd_key_set(s, *o_); });
  ks->add_option("ref", o.ref,
                 "Key ref: NAME or system.NAME, pack.<pack>.NAME, action.<action>.NAME, "
                 "sensor.<sensor>.NAME, identity.<login>.NAME")
      ->required();
  ks->add_option("value", o.value, "Value (stored as a string unless --value-json)")->required();
  ks->add_flag("--encrypt", o.encrypt, "Store encrypted (default: not encrypted)");
  ks->add_flag("--value-json", o.value_json, "Parse VALUE as JSON");
  ks->add_option("--ttl", o.ttl, "Expire after SECONDS")
      ->type_name("SECONDS")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40).description(""));
  leaf(key, "delete", "Delete a key", [this](Session& s) { return cmd_key_delete(s, *o_); })
      ->add_option("ref", o.ref, "Key ref")
      ->required();

  // inquiry
  auto* inquiry = group("inquiry", "List and respond to inquiries");
  leaf(inquiry, "list", "List inquiries", [this](Session& s) {
    return cmd_inquiry_list(s, *o_);
  })->add_option("--status", o.status, "pending, responded, timeout or cancelled");
  auto* ir = leaf(inquiry, "respond", "Respond to an inquiry (typed by its response_schema)",
                  [this](Session& s) { return cmd_inquiry_respond(s, *o_); });
  ir->add_option("id", o.id, "Inquiry id")->required();
  ir->add_option("response", o.kv, "Response fields key=value, typed by the response_schema")
      ->type_name("KEY=VALUE")
      ->required();

  // workflow
  auto* workflow = group("workflow", "List, show and run workflows");
  leaf(workflow, "list", "List workflows", [this](Session& s) {
    return cmd_workflow_list(s, *o_);
  })->add_option("--pack", o.pack, "Only this pack's workflows");
  leaf(workflow, "show", "Show a workflow and its tasks",
       [this](Session& s) { return cmd_workflow_show(s, *o_); })
      ->add_option("ref", o.ref, "Workflow ref or id")
      ->required();
  add_run_options(leaf(workflow, "run",
                       "Run a workflow (its action); with --wait also print the child executions",
                       [this](Session& s) { return run_action(s, *o_, true); }),
                  "Workflow");
}

ClientCommands::~ClientCommands() = default;

CLI::App* ClientCommands::leaf(CLI::App* parent, const std::string& name, const std::string& help,
                               std::function<int(Session&)> handler) {
  auto* app = parent->add_subcommand(name, help);
  add_globals(app, o_->global);
  app->footer(std::string(kExitCodesHelp));
  leaves_.push_back(Leaf{app, std::move(handler)});
  return app;
}

std::optional<int> ClientCommands::run() {
  const Leaf* chosen = nullptr;
  for (const auto& l : leaves_) {
    if (l.app->parsed()) chosen = &l;
  }
  if (chosen == nullptr) return std::nullopt;
  const bool json = o_->global.json;
  auto report = [json](const std::string& message, int http_status, const std::string& code,
                       const nlohmann::json& details) {
    std::string text = json ? error_json(message, http_status, code).dump() + "\n"
                            : render_error(message, http_status, code, details);
    std::fwrite(text.data(), 1, text.size(), stderr);
  };
  try {
    Session session(o_->global);
    return chosen->handler(session);
  } catch (const CliError& e) {
    report(e.what(), e.http_status(), e.api_code(), e.details());
    return static_cast<int>(e.code());
  } catch (const nlohmann::json::exception& e) {
    report(std::string("unexpected answer from the server: ") + e.what(), 0, "", nullptr);
    return static_cast<int>(ExitCode::kApiRefused);
  } catch (const std::exception& e) {
    report(e.what(), 0, "", nullptr);
    return static_cast<int>(ExitCode::kApiRefused);
  }
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }
  return std::nullopt;
}

}  // namespace attune::cli::client
