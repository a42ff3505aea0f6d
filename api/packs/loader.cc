// Pack layout and YAML → definition bodies (see loader.h).
#include "api/packs/loader.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "runners/formats.h"
#include "runners/runner.h"

namespace attune::packs {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxYamlBytes = 4 << 20;

// Thrown inside the loader only, caught by load_pack: a refusal with its location.
struct Refusal {
  PackError error;
};

[[noreturn]] void refuse(std::string file, std::string field, std::string message,
                         int status = 422, int line = 0) {
  throw Refusal{PackError{status, std::move(file), line, std::move(field), std::move(message)}};
}

bool is_yaml(const fs::path& p) { return p.extension() == ".yaml" || p.extension() == ".yml"; }

// Regular YAML files directly in `dir` (relative names), sorted; none if it does not exist.
std::vector<std::string> yaml_files(const fs::path& root, const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path full = root / dir;
  if (!fs::is_directory(full, ec)) return out;
  for (const auto& entry : fs::directory_iterator(full, ec)) {
    if (entry.is_regular_file(ec) && is_yaml(entry.path())) {
      out.push_back(dir + "/" + entry.path().filename().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The document of a YAML file, which must be a mapping; keys starting with "__" dropped.
Json read_mapping(const fs::path& root, const std::string& rel) {
  std::ifstream in(root / rel, std::ios::binary);
  if (!in) refuse(rel, "", "cannot read the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > kMaxYamlBytes) refuse(rel, "", "file is larger than 4 MiB");
  int line = 0;
  auto doc = runners::parse_yaml(text.str(), &line);
  if (!doc.ok()) refuse(rel, "", doc.error().message, 422, line);
  if (!doc->is_object()) refuse(rel, "", "the document must be a YAML mapping");
  Json out = Json::object();
  for (auto& [k, v] : doc->items()) {
    if (k.rfind("__", 0) != 0) out[k] = std::move(v);
  }
  return out;
}

std::string stem(const std::string& rel) {
  std::string name = fs::path(rel).filename().string();
  for (const char* suffix : {".workflow.yaml", ".workflow.yml", ".yaml", ".yml"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      return name.substr(0, name.size() - s.size());
    }
  }
  return name;
}

class Loader {
 public:
  explicit Loader(fs::path root) : root_(std::move(root)) {}

  PackContent run() {
    std::error_code ec;
    std::string pack_file;
    for (const char* name : {"pack.yaml", "pack.yml"}) {
      if (fs::is_regular_file(root_ / name, ec)) {
        pack_file = name;
        break;
      }
    }
    if (pack_file.empty()) refuse("", "", "pack.yaml not found at the root of the pack", 400);
    load_pack_file(pack_file);
    for (const auto& f : yaml_files(root_, "actions")) load_action(f);
    for (const auto& f : yaml_files(root_, "triggers")) load_trigger(f);
    for (const auto& f : yaml_files(root_, "sensors")) load_sensor(f);
    for (const auto& f : yaml_files(root_, "rules")) load_rule(f);
    for (const auto& f : yaml_files(root_, "runtimes")) load_runtime(f);
    check_workflow_files();
    for (const auto& f : yaml_files(root_, "policies")) load_policy(f);
    for (const auto& f : yaml_files(root_, "permission_sets")) load_permission_set(f);
    out_.python_requirements = fs::is_regular_file(root_ / "requirements.txt", ec);
    out_.node_package = fs::is_regular_file(root_ / "package.json", ec);
    return std::move(out_);
  }

 private:
  // `<pack>.<name>` for an unqualified ref; qualified refs are kept.
  std::string qualify(const std::string& ref) const {
    return ref.find('.') == std::string::npos ? pack_ref_ + "." + ref : ref;
  }

  std::string string_field(const Json& doc, const std::string& file, const char* key) {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) return "";
    if (!it->is_string()) refuse(file, key, "must be a string");
    return it->get<std::string>();
  }

  // The component's bare name: `name` (or `ref`), else the file name; a `<pack>.` prefix is
  // accepted and removed.
  std::string component_name(const Json& doc, const std::string& file) {
    std::string name = string_field(doc, file, "name");
    const char* field = "name";
    if (name.empty()) {
      name = string_field(doc, file, "ref");
      field = "ref";
    }
    if (name.empty()) name = stem(file);
    if (name.find('.') != std::string::npos) {
      if (name.rfind(pack_ref_ + ".", 0) != 0) {
        refuse(file, field, "'" + name + "' must be a bare name or start with '" + pack_ref_ + ".'");
      }
      name = name.substr(pack_ref_.size() + 1);
    }
    if (!valid_component_name(name)) {
      refuse(file, field,
             "'" + name + "': names use letters, digits, '_' or '-' and are not all digits");
    }
    return name;
  }

  Json mapping_field(const Json& doc, const std::string& file, const char* key) {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) return Json::object();
    if (!it->is_object()) refuse(file, key, "must be a mapping");
    return *it;
  }

  // The mapping under the first of `keys` present in `doc` (pack files use `parameters`/`output`
  // for the API's `param_schema`/`out_schema`), or {}.
  Json schema_field(const Json& doc, const std::string& file,
                    std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
      if (doc.contains(k)) return mapping_field(doc, file, k);
    }
    return Json::object();
  }

  // Copies the listed keys present in `doc` into `body` unchanged (the service type-checks).
  static void copy(const Json& doc, Json& body, std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
      if (auto it = doc.find(k); it != doc.end()) body[k] = *it;
    }
  }

  void add(std::string kind, std::string file, Json body) {
    const std::string name = body["ref"];
    if (!names_[kind].insert(name).second) {
      refuse(file, "name", "duplicate " + kind + " name '" + name + "'");
    }
    out_.components.push_back(Component{std::move(kind), std::move(file), std::move(body)});
  }

  // Workflow files no action names are still parsed and checked for `tasks`.
  void check_workflow_files() {
    for (const auto& f : yaml_files(root_, "actions/workflows")) {
      const Json doc = read_mapping(root_, f);
      auto tasks = doc.find("tasks");
      if (tasks == doc.end() || !(tasks->is_object() || tasks->is_array())) {
        refuse(f, "tasks", "a workflow needs `tasks` (a mapping or a list)");
      }
    }
  }

  void load_pack_file(const std::string& file) {
    const Json doc = read_mapping(root_, file);
    std::string ref = string_field(doc, file, "ref");
    const char* field = "ref";
    if (ref.empty()) {
      ref = string_field(doc, file, "name");
      field = "name";
    }
    if (ref.empty()) refuse(file, "ref", "the pack needs a `ref` (or `name`)");
    if (!valid_pack_ref(ref)) {
      refuse(file, field,
             "'" + ref + "' is not a valid pack ref (lowercase letters, digits, '_' or '-', "
             "starting with a letter)");
    }
    pack_ref_ = ref;
    Json pack = Json::object();
    pack["ref"] = ref;
    copy(doc, pack, {"label", "description", "conf_schema", "config", "meta", "tags",
                     "dependencies", "runtime_deps", "is_standard"});
    if (!pack.contains("label") || pack["label"].is_null()) pack["label"] = ref;
    if (auto it = doc.find("version"); it != doc.end() && !it->is_null()) {
      if (it->is_string()) {
        pack["version"] = *it;
      } else if (it->is_number()) {
        pack["version"] = it->dump();
      } else {
        refuse(file, "version", "must be a string");
      }
    } else {
      pack["version"] = "0.0.0";
    }
    if (!std::regex_match(pack["version"].get<std::string>(), std::regex("^[A-Za-z0-9._+-]{1,64}$"))) {
      refuse(file, "version", "must use letters, digits, '.', '_', '+' or '-' (1-64 characters)");
    }
    out_.pack = std::move(pack);
  }

  // A file of the pack under `dir` named by an entry point: its existence, and no escape from
  // the pack (through `..` or a symlink).
  bool pack_file_exists(const std::string& dir, const std::string& entry) const {
    if (entry.empty() || entry.find('\n') != std::string::npos || entry[0] == '/') return false;
    std::error_code ec;
    const fs::path base = fs::weakly_canonical(root_ / dir, ec);
    if (ec) return false;
    const fs::path file = fs::weakly_canonical(root_ / dir / entry, ec);
    if (ec || !fs::is_regular_file(file, ec)) return false;
    auto [b, f] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
    return b == base.end();
  }

  // Whether a shell entry point that names no file of the pack is script text: anything but a
  // single word naming a script (`x.sh`, `bin/x`), which must then exist.
  static bool looks_inline(const std::string& entry) {
    if (entry.find_first_of(" \t\n;$|&<>\"'`()=") != std::string::npos) return true;
    const bool script_name = entry.size() > 3 && (entry.rfind(".sh") == entry.size() - 3 ||
                                                  entry.find('/') != std::string::npos);
    return !script_name;
  }

  std::string runtime_of(const Json& doc, const std::string& file) {
    std::string runner = string_field(doc, file, "runner_type");
    const char* field = "runner_type";
    if (runner.empty()) {
      runner = string_field(doc, file, "runtime_ref");
      field = "runtime_ref";
    }
    if (runner.empty()) return "core.shell";
    const std::string canonical = runners::canonical_runtime(runner);
    if (canonical.empty()) {
      refuse(file, field,
             "unknown runner '" + runner + "' (shell, python, nodejs, native, http, container)");
    }
    return canonical;
  }

  void load_action(const std::string& file) {
    const Json doc = read_mapping(root_, file);
    const std::string name = component_name(doc, file);
    if (doc.contains("workflow_file")) {
      const std::string wf = string_field(doc, file, "workflow_file");
      if (!pack_file_exists("actions", wf)) {
        refuse(file, "workflow_file", "'" + wf + "' is not a file in actions/");
      }
      const std::string wf_file = "actions/" + wf;
      const Json definition = read_mapping(root_, wf_file);
      auto tasks = definition.find("tasks");
      if (tasks == definition.end() || !(tasks->is_object() || tasks->is_array())) {
        refuse(wf_file, "tasks", "a workflow needs `tasks` (a mapping or a list)");
      }
      names_["action"].insert(name);
      // A workflow and its companion action (API.md §12.1): the service creates both.
      Json body = Json::object();
      body["ref"] = name;
      body["definition"] = definition;
      body["param_schema"] = schema_field(doc, file, {"parameters", "param_schema"});
      body["out_schema"] = schema_field(doc, file, {"output", "output_schema", "out_schema"});
      copy(doc, body, {"label", "description", "enabled", "tags"});
      if (!body.contains("label")) body["label"] = definition.value("label", Json(name));
      if (!body.contains("description") && definition.contains("description")) {
        body["description"] = definition["description"];
      }
      add("workflow", file, std::move(body));
      return;
    }
    const std::string runtime = runtime_of(doc, file);
    std::string entry = string_field(doc, file, "entry_point");
    if (entry.empty()) entry = string_field(doc, file, "entrypoint");
    if (runtime == "core.shell") {
      if (entry.empty()) refuse(file, "entry_point", "is required");
      if (!pack_file_exists("actions", entry) && !looks_inline(entry)) {
        refuse(file, "entry_point", "'" + entry + "' is not a file in actions/");
      }
    } else if (runtime == "core.python" || runtime == "core.nodejs" || runtime == "core.native") {
      if (entry.empty()) refuse(file, "entry_point", "is required");
      if (!pack_file_exists("actions", entry)) {
        refuse(file, "entry_point", "'" + entry + "' is not a file in actions/");
      }
    } else if (runtime == "core.container") {
      const std::string image = string_field(doc, file, "image");
      if (image.empty()) refuse(file, "image", "is required for container actions");
      if (!entry.empty() && !pack_file_exists("actions", entry)) {
        refuse(file, "entry_point", "'" + entry + "' is not a file in actions/");
      }
    }
    Json body = Json::object();
    body["ref"] = name;
    body["runtime_ref"] = runtime;
    if (!entry.empty()) body["entrypoint"] = entry;  // http (and container with command): none
    body["param_schema"] = schema_field(doc, file, {"parameters", "param_schema"});
    body["out_schema"] = schema_field(doc, file, {"output", "output_schema", "out_schema"});
    copy(doc, body, {"label", "description", "enabled", "parameter_delivery", "parameter_format",
                     "output_format", "max_output_bytes", "timeout_seconds",
                     "default_execution_permission_set_refs", "reference_visibility",
                     "reference_allowed_pack_refs", "runtime_version_constraint", "max_retries",
                     "image", "command", "network"});
    if (!body.contains("timeout_seconds") && doc.contains("timeout")) {
      body["timeout_seconds"] = doc["timeout"];
    }
    if (!body.contains("label")) body["label"] = name;
    add("action", file, std::move(body));
  }

  void load_trigger(const std::string& file) {
    const Json doc = read_mapping(root_, file);
    Json body = Json::object();
    body["ref"] = component_name(doc, file);
    body["param_schema"] = schema_field(doc, file, {"parameters", "param_schema"});
    body["out_schema"] = schema_field(doc, file, {"output", "payload_schema", "out_schema"});
    copy(doc, body, {"label", "description", "enabled", "webhook_config", "reference_visibility",
                     "reference_allowed_pack_refs"});
    if (!body.contains("label")) body["label"] = body["ref"];
    add("trigger", file, std::move(body));
  }

  void load_sensor(const std::string& file) {
    const Json doc = read_mapping(root_, file);
    Json body = Json::object();
    std::string name = string_field(doc, file, "name");
    if (name.empty()) name = string_field(doc, file, "class_name");
    Json named = doc;
    if (!name.empty()) named["name"] = name;
    body["ref"] = component_name(named, file);
    const std::string runtime = runtime_of(doc, file);
    std::string entry = string_field(doc, file, "entry_point");
    if (entry.empty()) entry = string_field(doc, file, "entrypoint");
    if (entry.empty()) refuse(file, "entry_point", "is required");
    // "builtin:<name>": a sensor the platform itself implements (the core timers).
    const bool builtin = pack_ref_ == "core" && entry.rfind("builtin:", 0) == 0;
    if (builtin) body["builtin"] = true;
    if (!builtin && !pack_file_exists("sensors", entry) && !pack_file_exists(".", entry) &&
        !(runtime == "core.shell" && looks_inline(entry))) {
      refuse(file, "entry_point", "'" + entry + "' is not a file in sensors/");
    }
    body["runtime_ref"] = runtime;
    body["entrypoint"] = entry;
    Json types = Json::array();
    auto it = doc.find("trigger_types");
    if (it != doc.end() && !it->is_null()) {
      if (!it->is_array()) refuse(file, "trigger_types", "must be a list");
      for (const auto& t : *it) {
        if (t.is_string()) {
          types.push_back(qualify(t.get<std::string>()));
        } else if (t.is_object() && t.value("name", Json()).is_string()) {
          // A trigger declared inline (StackStorm style): defined here unless triggers/ has it.
          Json trig = Json::object();
          trig["ref"] = t["name"];
          const std::string ref = trig["ref"];
          if (!valid_component_name(ref)) {
            refuse(file, "trigger_types", "'" + ref + "' is not a valid trigger name");
          }
          trig["param_schema"] = t.value("parameters_schema", t.value("parameters", Json::object()));
          trig["out_schema"] = t.value("payload_schema", Json::object());
          copy(t, trig, {"label", "description"});
          if (!trig.contains("label")) trig["label"] = ref;
          inline_triggers_.emplace_back(file, std::move(trig));
          types.push_back(qualify(ref));
        } else {
          refuse(file, "trigger_types", "entries are trigger refs or mappings with a name");
        }
      }
    }
    body["trigger_types"] = types;
    body["param_schema"] = schema_field(doc, file, {"parameters", "param_schema"});
    copy(doc, body, {"label", "description", "enabled", "config"});
    if (!body.contains("label")) body["label"] = body["ref"];
    add("sensor", file, std::move(body));
    flush_inline_triggers();
  }

  void flush_inline_triggers() {
    for (auto& [file, trig] : inline_triggers_) {
      if (names_["trigger"].count(trig["ref"].get<std::string>())) continue;
      add("trigger", file, std::move(trig));
    }
    inline_triggers_.clear();
  }

  // `trigger`/`action` of a rule: a ref string, or a mapping {ref|type|name, parameters}.
  void rule_target(const Json& doc, const std::string& file, const char* key,
                   const char* ref_key, const char* params_key, Json& body) {
    std::string ref = string_field(doc, file, ref_key);
    Json params = doc.contains(params_key) ? mapping_field(doc, file, params_key) : Json::object();
    if (auto it = doc.find(key); it != doc.end() && !it->is_null()) {
      if (it->is_string()) {
        ref = it->get<std::string>();
      } else if (it->is_object()) {
        for (const char* k : {"ref", "type", "name"}) {
          if (it->value(k, Json()).is_string()) {
            ref = (*it)[k].get<std::string>();
            break;
          }
        }
        if (auto p = it->find("parameters"); p != it->end() && !p->is_null()) {
          if (!p->is_object()) refuse(file, std::string(key) + ".parameters", "must be a mapping");
          params = *p;
        }
      } else {
        refuse(file, key, "must be a ref or a mapping with `ref` and `parameters`");
      }
    }
    if (ref.empty()) refuse(file, key, "is required");
    body[ref_key] = qualify(ref);
    body[params_key] = params;
  }

  void load_rule(const std::string& file) {
    const Json doc = read_mapping(root_, file);
    Json body = Json::object();
    body["ref"] = component_name(doc, file);
    rule_target(doc, file, "trigger", "trigger_ref", "trigger_params", body);
    rule_target(doc, file, "action", "action_ref", "action_params", body);
    copy(doc, body, {"label", "description", "enabled", "conditions"});
    if (!body.contains("conditions") && doc.contains("criteria")) {
      body["conditions"] = doc["criteria"];
    }
    if (auto it = doc.find("permission_set_refs"); it != doc.end() && it->is_array()) {
      Json refs = Json::array();
      for (const auto& r : *it) {
        refs.push_back(r.is_string() && r.get<std::string>() != "standard"
                           ? Json(qualify(r.get<std::string>()))
                           : r);
      }
      body["permission_set_refs"] = refs;
    }
    if (!body.contains("label")) body["label"] = body["ref"];
    add("rule", file, std::move(body));
  }

  // permission_sets/<name>.yaml: ref (or name), label, description, grants, roles.
  void load_permission_set(const std::string& file) {
    const Json doc = read_mapping(root_, file);
    Json body = Json::object();
    body["ref"] = component_name(doc, file);
    if (doc.contains("grants") && !doc["grants"].is_null() && !doc["grants"].is_array()) {
      refuse(file, "grants", "must be a list");
    }
    body["grants"] = doc.value("grants", Json::array());
    if (body["grants"].is_null()) body["grants"] = Json::array();
    copy(doc, body, {"label", "description", "roles"});
    if (!body.contains("label")) body["label"] = body["ref"];
    add("permission_set", file, std::move(body));
  }

  // policies/<name>.yaml: API field names (API.md §15); the service validates them. Unqualified
  // action refs (top-level `action_ref`, `scope.action_ref`) are the pack's.
  void load_policy(const std::string& file) {
    Json body = read_mapping(root_, file);
    body["ref"] = component_name(body, file);
    if (auto it = body.find("action_ref"); it != body.end() && it->is_string()) {
      *it = qualify(it->get<std::string>());
    }
    if (auto scope = body.find("scope"); scope != body.end() && scope->is_object()) {
      if (auto it = scope->find("action_ref"); it != scope->end() && it->is_string()) {
        *it = qualify(it->get<std::string>());
      }
    }
    add("policy", file, std::move(body));
  }

  // Runtime files come back as written; `ref` names them (`name` is their display name).
  void load_runtime(const std::string& file) {
    Json doc = read_mapping(root_, file);
    Json named = Json::object();
    named["name"] = doc.contains("ref") ? doc["ref"] : Json(stem(file));
    const std::string name = component_name(named, file);
    doc["ref"] = name;
    if (!doc.contains("name")) doc["name"] = name;
    add("runtime", file, std::move(doc));
  }

  const fs::path root_;
  std::string pack_ref_;
  PackContent out_;
  std::map<std::string, std::set<std::string>> names_;
  std::vector<std::pair<std::string, Json>> inline_triggers_;
};

}  // namespace

std::string PackError::text() const {
  std::string out = file;
  if (!file.empty() && line > 0) out += ":" + std::to_string(line);
  if (!out.empty()) out += ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

Json PackError::details() const {
  Json d = Json::object();
  if (!file.empty()) d["file"] = file;
  if (line > 0) d["line"] = line;
  if (!field.empty()) d["field"] = field;
  return d;
}

bool valid_pack_ref(const std::string& ref) {
  static const std::regex re("^[a-z][a-z0-9_-]{0,127}$");
  return std::regex_match(ref, re);
}

bool valid_component_name(const std::string& name) {
  static const std::regex re("^[A-Za-z0-9_-]{1,255}$");
  return std::regex_match(name, re) &&
         !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<PackContent> load_pack(const std::filesystem::path& root, PackError& error) {
  try {
    return Loader(root).run();
  } catch (const Refusal& r) {
    error = r.error;
    return make_error(error.status == 400 ? Errc::kBadRequest : Errc::kValidation, error.text());
  } catch (const std::filesystem::filesystem_error& e) {
    error = PackError{400, "", 0, "", std::string("cannot read the pack: ") + e.what()};
    return make_error(Errc::kBadRequest, error.text());
  }
}

}  // namespace attune::packs
