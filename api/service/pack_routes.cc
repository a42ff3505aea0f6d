// Pack installation (API.md §8): POST /packs/upload and /packs/register, the files of installed
// packs under <data dir>/packs, the built-in core pack, and pack environments.
//
// An install is validated whole before anything changes: the content is staged under
// <packs_root>/.staging, loaded (api/packs/loader.h) and every definition built with the same
// field rules as the REST routes. Only then are the files moved to their own directory
// <packs_root>/<ref>/<version>-<id> (a rename) and all definitions — the pack, its components,
// tombstones of components the new content lacks — written in one produce call, which is atomic
// on the embedded log. That write is the commit point: a crash before it leaves the old pack
// (and an orphan directory, removed at the next start), after it the new one. The previous
// version's directory is removed once the new definitions are applied.
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "api/auth/secrets.h"
#include "api/authz/authz.h"
#include "api/packs/archive.h"
#include "api/packs/core_files.h"
#include "api/packs/loader.h"
#include "api/rest/multipart.h"
#include "api/service/definition_fields.h"
#include "api/service/rule_check.h"
#include "api/service/pack_installer.h"
#include "api/service/service.h"
#include "api/service/workflow_defs.h"
#include "processors/admission/policy.h"
#include "processors/admission/policy_def.h"
#include "processors/expr/param_schema.h"
#include "processors/sensor/sensor_manager.h"
#include "runners/environments.h"
#include "runners/runner.h"

namespace attune::service {

using detail::data;
using detail::deleted;
using detail::error;
using detail::sorted_page;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

namespace {

namespace fs = std::filesystem;

rest::HttpResponse pack_error(const packs::PackError& e) {
  const std::string code = e.status == 400 ? "BAD_REQUEST" : "VALIDATION_ERROR";
  return rest::HttpResponse::error(e.status, code, e.text(), e.details());
}

rest::HttpResponse file_error(const std::string& file, const Json& fields) {
  std::string field, message;
  if (fields.is_object() && !fields.empty()) {
    field = fields.begin().key();
    message =
        fields.begin()->is_string() ? fields.begin()->get<std::string>() : fields.begin()->dump();
  }
  packs::PackError e{422, file, 0, field, message};
  Json details = e.details();
  details["fields"] = fields;
  return rest::HttpResponse::error(422, "VALIDATION_ERROR", e.text(), details);
}

// Whether `inner` is `outer` or below it (both canonical).
bool within(const fs::path& outer, const fs::path& inner) {
  auto [o, i] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
  return o == outer.end();
}

// Copies a registered pack directory into the staging area. Symlinks must stay inside the pack
// (they are copied as links); special files are refused.
Status copy_pack_dir(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  const fs::path base = fs::canonical(from, ec);
  if (ec)
    return make_error(Errc::kBadRequest, "cannot read " + from.string() + ": " + ec.message());
  fs::create_directories(to, ec);
  for (auto it = fs::recursive_directory_iterator(base, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(base);
    if (rel.begin() != rel.end() && rel.begin()->string() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    const fs::path dest = to / rel;
    const auto st = it->symlink_status(ec);
    if (fs::is_symlink(st)) {
      const fs::path resolved = fs::weakly_canonical(it->path(), ec);
      if (ec || !within(base, resolved)) {
        return make_error(Errc::kBadRequest,
                          "'" + rel.string() + "' is a symlink pointing outside the pack");
      }
      fs::copy_symlink(it->path(), dest, ec);
    } else if (fs::is_directory(st)) {
      fs::create_directories(dest, ec);
    } else if (fs::is_regular_file(st)) {
      fs::copy_file(it->path(), dest, fs::copy_options::overwrite_existing, ec);
    } else {
      return make_error(Errc::kBadRequest, "'" + rel.string() + "' is not a file or directory");
    }
    if (ec) return make_error(Errc::kInternal, "cannot copy " + rel.string() + ": " + ec.message());
  }
  if (ec)
    return make_error(Errc::kBadRequest, "cannot read " + from.string() + ": " + ec.message());
  return {};
}

bool truthy_form(const std::string& v) {
  return v == "true" || v == "1" || v == "yes" || v == "on" || v == "True";
}

}  // namespace

PackInstaller::~PackInstaller() {
  std::lock_guard lock(life_->mu);
  life_->alive = false;
}

std::string PackInstaller::new_staging_dir() {
  std::error_code ec;
  const fs::path dir = fs::path(s.options.packs_root) / ".staging" / std::to_string(s.ids.next());
  fs::create_directories(dir, ec);
  return ec ? std::string() : dir.string();
}

namespace {

// The pack a `{ref}` segment names when the caller may `action` on it (route's action when
// empty); else nullptr and the 404/403 in `refused`.
JsonPtr find_pack(ServiceContext& s, Call& c, std::optional<rest::HttpResponse>& refused,
                  std::string_view action = {}) {
  const std::string& segment = c.req.params["ref"];
  auto pack = s.defs.resolve("pack", segment);
  const std::string ref = pack ? pack->value("ref", "") : segment;
  if (!pack) {
    refused = error(Errc::kNotFound, "Pack '" + segment + "' not found");
    return nullptr;
  }
  refused = c.check("Pack '" + ref + "'", authz::Object{"packs", ref}, "public", action);
  return refused ? nullptr : pack;
}

// Every pack the caller can see (API.md §16.3); reading packs needs no grant.
rest::HttpResponse list_packs(ServiceContext& s, Call& c) {
  auto page = rest::parse_page_request(c.req);
  if (!page.ok()) return Resp::error(page.error());
  std::vector<JsonPtr> rows;
  for (auto& pack : s.defs.list("pack")) {
    if (c.can().sees_pack(pack->value("ref", ""))) rows.push_back(std::move(pack));
  }
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

rest::HttpResponse get_pack(ServiceContext& s, Call& c) {
  std::optional<rest::HttpResponse> refused;
  auto pack = find_pack(s, c, refused);
  if (!pack) return *refused;
  return data(200, *pack);
}

rest::HttpResponse create_pack(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto ref = f.str("ref", true, 1, 128);
  if (ref && !std::regex_match(*ref, pack_ref_re())) {
    f.fail("ref", "must match ^[a-z][a-z0-9_-]{0,127}$");
  }
  Json pack = Json::object();
  apply_fields(f, *body, pack_fields(), pack, true);
  if (!f.ok()) return validation(f.errors());
  std::lock_guard lock(s.write_mu);
  const std::string exists = "Pack '" + *ref + "' already exists";
  if (s.defs.get("pack", *ref)) return error(Errc::kConflict, exists);
  auto claimant = s.claim("pack", *ref, true);
  if (!claimant.ok()) return s.claim_failed(claimant.error(), exists);
  const std::string now = s.now_str();
  pack.update(Json{{"id", s.ids.next()},
                   {"ref", *ref},
                   {"owner_identity", c.who().id},
                   {"installation_method", "api"},
                   {"storage_path", nullptr},
                   {"installed_at", now},
                   {"created", now},
                   {"updated", now}});
  std::vector<OutRecord> records{definition_record("pack", pack, s.now_ms(), "api")};
  s.claim_release(records, "pack", *ref, *claimant);
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return data(201, pack, "Pack created");
}

rest::HttpResponse update_pack(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  std::lock_guard lock(s.write_mu);
  std::optional<rest::HttpResponse> refused;
  auto existing = find_pack(s, c, refused);
  if (!existing) return *refused;
  Json pack = *existing;
  FieldReader f(*body);
  apply_fields(f, *body, pack_fields(), pack, false);
  if (!f.ok()) return validation(f.errors());
  pack["updated"] = s.now_str();
  auto st = s.write_definitions({definition_record("pack", pack, s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, pack, "Pack updated");
}

rest::HttpResponse delete_pack(ServiceContext& s, PackInstaller& installer, Call& c) {
  std::lock_guard lock(s.write_mu);
  std::optional<rest::HttpResponse> refused;
  auto pack = find_pack(s, c, refused);
  if (!pack) return *refused;
  const std::string ref = (*pack)["ref"];
  if (ref == "core") return error(Errc::kBadRequest, "The core pack cannot be deleted");
  // Remove every component of the pack, and rules elsewhere that point at its actions or
  // triggers (they could never fire again). One produce call: atomic on the embedded log.
  std::vector<OutRecord> records;
  std::set<std::string> removed_rules;
  const int64_t ts = s.now_ms();
  auto remove = [&](const char* kind, const JsonPtr& obj) {
    const std::string r = (*obj)["ref"];
    if (std::string_view(kind) == "rule" && !removed_rules.insert(r).second) return;
    records.push_back(definition_tombstone(kind, r, (*obj)["id"], ts, "api"));
  };
  for (const char* kind :
       {"action", "workflow", "trigger", "rule", "sensor", "runtime", "permission_set", "policy"}) {
    for (const auto& obj : s.defs.list(kind)) {
      if (detail::pack_ref_of(*obj) == ref) remove(kind, obj);
    }
  }
  // Policies of other packs that govern this pack or its actions go too.
  for (const auto& p : s.defs.list(admission::kPolicyKind)) {
    if (detail::pack_ref_of(*p) != ref &&
        p->value("scope", Json::object()).value("pack_ref", "") == ref) {
      remove("policy", p);
    }
  }
  // Assignments of its permission sets go with them.
  for (const auto& a : s.defs.list("permission_assignment")) {
    const std::string set = a->value("permission_set_ref", "");
    if (set.rfind(ref + ".", 0) == 0) remove("permission_assignment", a);
  }
  for (const auto& rule : s.defs.list("rule")) {
    const std::string a = rule->value("action_ref", ""), t = rule->value("trigger_ref", "");
    if (a.rfind(ref + ".", 0) == 0 || t.rfind(ref + ".", 0) == 0) remove("rule", rule);
  }
  // Its datastore keys (pack-, action- and sensor-owned) go with it.
  for (const auto& key : s.defs.list("key")) {
    if (key->value("owner_pack_ref", Json()) == ref) remove("key", key);
  }
  records.push_back(definition_tombstone("pack", ref, (*pack)["id"], ts, "api"));
  // Its history (events, enforcements, executions) stays, visible to whom the pack was
  // (ServiceContext::view_of reads retired packs like live ones until the ref is reused).
  records.push_back(definition_record("retired_pack",
                                      Json{{"id", (*pack)["id"]},
                                           {"ref", ref},
                                           {"owner_identity", pack->value("owner_identity", Json())},
                                           {"deleted", s.now_str()}},
                                      ts, "api"));
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  // Its installed files go once nothing refers to them (a crash before this: the start's sweep).
  if (auto sp = pack->value("storage_path", Json(nullptr)); sp.is_string()) {
    installer.remove_pack_files(sp.get<std::string>());
  }
  return deleted("Pack '" + ref + "' deleted");
}


// An install by the caller: it owns the pack, may replace only a pack it may install, hand
// out only permission sets it holds, and install global policies only with the grant for them.
rest::HttpResponse install_as_caller(ServiceContext& s, PackInstaller& installer, Call& c,
                                     const std::string& staging, const fs::path& root,
                                     const std::string& method, bool force) {
  return installer.install_pack(
      staging, root.string(), method, force, Json(c.who().id),
      [&c](const std::string& ref) { return c.check("Pack '" + ref + "'", {"packs", ref}); },
      [&s, &c](const Json& refs) { return s.check_set_refs(c, refs); },
      [&c] { return refuse_global_policy(c, "create"); });
}

rest::HttpResponse upload_pack(ServiceContext& s, PackInstaller& installer, Call& c) {
  Req& req = c.req;
  if (s.options.packs_root.empty()) {
    return error(Errc::kUnavailable, "Pack installation is not configured on this server");
  }
  auto form = rest::parse_multipart(req.header("Content-Type").value_or(""), req.body);
  if (!form.ok()) return Resp::error(form.error());
  auto file = form->find("pack");
  if (file == form->end() || file->second.data.empty()) {
    return error(Errc::kBadRequest, "multipart field 'pack' (the pack's tar.gz) is required");
  }
  const bool force = form->count("force") && truthy_form(form->at("force").data);
  const std::string staging = installer.new_staging_dir();
  if (staging.empty()) return error(Errc::kInternal, "cannot create a staging directory");
  packs::ExtractLimits limits;
  limits.max_unpacked_bytes = s.options.pack_max_unpacked_bytes;
  packs::ExtractError xe;
  if (!packs::extract_archive(file->second.data, staging, limits, xe)) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    return Resp::error(xe.status, xe.status == 413 ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST",
                       xe.message);
  }
  const fs::path root = packs::pack_root_of(staging);
  if (root.empty()) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    return error(
        Errc::kBadRequest,
        "pack.yaml not found at the root of the archive or in its one top-level directory");
  }
  return install_as_caller(s, installer, c, staging, root, "upload", force);
}

rest::HttpResponse register_pack(ServiceContext& s, PackInstaller& installer, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto path = f.str("path", true, 1, 4096);
  auto force = f.has("force") ? f.boolean("force") : std::optional<bool>(false);
  if (f.has("skip_tests")) (void)f.boolean("skip_tests");
  if (!f.ok()) return validation(f.errors());
  if (s.options.packs_root.empty()) {
    return error(Errc::kUnavailable, "Pack installation is not configured on this server");
  }
  if (s.options.packs_dirs.empty()) {
    return error(Errc::kForbidden,
                 "No pack directories are configured on this server (attune serve --packs-dir)");
  }
  // A relative path is looked up in each configured directory.
  std::vector<fs::path> candidates;
  if (fs::path(*path).is_absolute()) {
    candidates.emplace_back(*path);
  } else {
    for (const auto& d : s.options.packs_dirs) candidates.push_back(fs::path(d) / *path);
  }
  fs::path source;
  bool outside = false;
  for (const auto& c : candidates) {
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(c, ec);
    if (ec) continue;
    bool allowed = false;
    for (const auto& d : s.options.packs_dirs) allowed = allowed || within(fs::path(d), canonical);
    if (!allowed) {
      outside = true;
      continue;
    }
    if (fs::is_directory(canonical, ec)) {
      source = canonical;
      break;
    }
  }
  if (source.empty()) {
    if (outside) {
      return error(Errc::kForbidden,
                   "Path '" + *path + "' is outside the configured pack directories");
    }
    return error(Errc::kBadRequest, "Pack directory '" + *path + "' does not exist");
  }
  const std::string staging = installer.new_staging_dir();
  if (staging.empty()) return error(Errc::kInternal, "cannot create a staging directory");
  const fs::path root = fs::path(staging) / "pack";
  if (auto st = copy_pack_dir(source, root); !st.ok()) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    return Resp::error(st.error());
  }
  return install_as_caller(s, installer, c, staging, root, "register", *force);
}

}  // namespace

rest::HttpResponse PackInstaller::install_pack(const std::string& staging, const std::string& root,
                                            const std::string& method, bool force, Json owner,
                                            const ReplaceCheck& may_replace,
                                            const AttachCheck& may_attach,
                                            const GlobalCheck& may_govern_all) {
  // Whatever happens, the staging directory goes (its pack root was moved away on success).
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{staging};

  packs::PackError perr;
  auto content = packs::load_pack(root, perr);
  if (!content.ok()) return pack_error(perr);
  const std::string ref = content->pack["ref"];
  const std::string pack_file = fs::exists(fs::path(root) / "pack.yaml") ? "pack.yaml" : "pack.yml";

  // The pack object, validated like POST /packs.
  Json pack = Json::object();
  {
    FieldReader f(content->pack);
    apply_fields(f, content->pack, pack_fields(), pack, true);
    if (!f.ok()) return file_error(pack_file, f.errors());
    Json errors = Json::object();
    auto config = expr::validate_parameters(pack["conf_schema"], pack["config"], errors);
    if (!config) {
      Json prefixed = Json::object();
      for (const auto& [k, v] : errors.items()) prefixed["config." + k] = v;
      return file_error(pack_file, prefixed);
    }
    pack["config"] = *config;
  }
  if (ref == "core" && method != "builtin") {
    return error(Errc::kBadRequest, "The core pack is built in and cannot be replaced");
  }

  std::lock_guard lock(s.write_mu);
  JsonPtr existing = s.defs.get("pack", ref);
  if (existing && !force) {
    return error(Errc::kConflict,
                 "Pack '" + ref + "' already exists (install with force to replace it)");
  }
  // Replacing needs packs:install on that pack; another tenant's pack is taken (409), since
  // refs are unique but its existence is all the caller learns.
  if (existing && may_replace) {
    if (auto refused = may_replace(ref)) {
      if (refused->status == 404) {
        return error(Errc::kConflict, "Pack '" + ref + "' already exists");
      }
      return *refused;
    }
  }

  const int64_t ts = s.now_ms();
  const std::string now = s.now_str();
  // Existing objects of this pack keep their ids (and creation times).
  auto stamp = [&](const char* kind, Json& obj, const std::string& full_ref) {
    JsonPtr old = s.defs.get(kind, full_ref);
    if (old && detail::pack_ref_of(*old) != ref) old = nullptr;  // another pack's: a conflict
    obj["id"] = old ? (*old)["id"] : Json(s.ids.next());
    obj["created"] = old ? old->value("created", Json(now)) : Json(now);
    obj["updated"] = now;
    obj["ref"] = full_ref;
    obj["pack_ref"] = ref;
    return old;
  };
  const int64_t pack_id = existing ? (*existing)["id"].get<int64_t>() : s.ids.next();
  const std::string version = pack["version"];
  const fs::path final_dir =
      fs::path(s.options.packs_root) / ref / (version + "-" + std::to_string(s.ids.next()));
  pack.update(Json{{"id", pack_id},
                   {"ref", ref},
                   {"created", existing ? existing->value("created", Json(now)) : Json(now)},
                   {"updated", now},
                   {"owner_identity", existing ? existing->value("owner_identity", owner) : owner},
                   {"installation_method", method == "builtin" ? "register" : method},
                   {"storage_path", final_dir.string()},
                   {"installed_at", now}});
  const bool needs_env =
      (content->python_requirements || content->node_package) && s.options.environments != nullptr;
  pack["environment"] = needs_env ? Json{{"status", "building"}, {"message", ""}} : Json(nullptr);

  // Components: built and checked like their REST creates; refs are the pack's.
  std::map<std::string, std::map<std::string, Json>> built;  // kind → full ref → object
  std::map<std::string, std::string> file_of;                // kind:ref → file
  auto conflict_elsewhere = [&](const char* kind, const std::string& full_ref,
                                const std::string& file) -> std::optional<Resp> {
    JsonPtr other = s.defs.get(kind, full_ref);
    if (other && detail::pack_ref_of(*other) != ref) {
      return file_error(file,
                        Json{{"name", std::string(kind) + " '" + full_ref + "' belongs to pack '" +
                                          detail::pack_ref_of(*other) + "'"}});
    }
    return std::nullopt;
  };
  // Runtimes first: actions and sensors of the same content may use them (the core pack's own).
  std::stable_sort(content->components.begin(), content->components.end(),
                   [](const packs::Component& a, const packs::Component& b) {
                     return (a.kind == "runtime") > (b.kind == "runtime");
                   });
  auto set_runtime = [&](const packs::Component& c, Json& obj) -> std::optional<Resp> {
    const std::string name = c.body.value("runtime_ref", "core.shell");
    const std::string canonical = runners::canonical_runtime(name);
    JsonPtr rt;
    if (auto it = built["runtime"].find(canonical); it != built["runtime"].end()) {
      rt = std::make_shared<const Json>(it->second);
    } else {
      rt = s.defs.get("runtime", canonical);
    }
    if (!rt)
      return file_error(c.file, Json{{"runner_type", "runtime '" + name + "' does not exist"}});
    obj["runtime"] = (*rt)["id"];
    obj["runtime_ref"] = (*rt)["ref"];
    return std::nullopt;
  };
  // Actions a workflow of this pack may run: existing ones and those installed with it.
  std::set<std::string> pack_actions;
  for (const auto& c : content->components) {
    if (c.kind == "action" || c.kind == "workflow") {
      pack_actions.insert(ref + "." + c.body["ref"].get<std::string>());
    }
  }
  const auto refuse_action = [&](const std::string& a) -> std::optional<std::string> {
    if (pack_actions.count(a) > 0) return std::nullopt;
    return workflow_action_refusal(s.defs.get("action", a), a, ref);
  };
  for (const auto& c : content->components) {
    const std::string full_ref = ref + "." + c.body["ref"].get<std::string>();
    if (auto err = conflict_elsewhere(c.kind.c_str(), full_ref, c.file)) return *err;
    file_of[c.kind + ":" + full_ref] = c.file;
    Json obj = Json::object();
    FieldReader f(c.body);
    if (c.kind == "action") {
      apply_fields(f, c.body, action_fields(), obj, true);
      if (!f.ok()) return file_error(c.file, f.errors());
      if (auto err = set_runtime(c, obj)) return *err;
      obj["workflow_def"] = nullptr;
      obj["is_adhoc"] = false;
    } else if (c.kind == "workflow") {
      // The workflow record and its companion action with the same ref (API.md §12.1).
      obj = Json{{"label", c.body.value("label", c.body["ref"])},
                 {"description", c.body.value("description", Json(""))},
                 {"version", pack.value("version", Json("1.0.0"))},
                 {"param_schema", c.body.value("param_schema", Json::object())},
                 {"out_schema", c.body.value("out_schema", Json::object())},
                 {"tags", c.body.value("tags", Json::array())},
                 {"enabled", c.body.value("enabled", true)},
                 {"definition", c.body["definition"]}};
      if (auto why = check_workflow_definition(obj["definition"], refuse_action)) {
        return file_error(c.file, Json{{"workflow_file", *why}});
      }
      if (auto err = conflict_elsewhere("action", full_ref, c.file)) return *err;
      file_of["action:" + full_ref] = c.file;
      Json action = workflow_action(obj);
      stamp("action", action, full_ref);
      action["pack"] = pack_id;
      obj["action"] = action["id"];
      built["action"][full_ref] = std::move(action);
    } else if (c.kind == "trigger") {
      apply_fields(f, c.body, trigger_fields(), obj, true);
      if (auto err = check_webhook_config(obj["webhook_config"])) f.fail("webhook_config", *err);
      if (!f.ok()) return file_error(c.file, f.errors());
      obj["is_adhoc"] = false;
      obj["sensor"] = nullptr;
      obj["sensor_ref"] = nullptr;
      // A re-install keeps the trigger's webhook.
      JsonPtr old = s.defs.get("trigger", full_ref);
      const bool ours = old && detail::pack_ref_of(*old) == ref;
      obj["webhook_enabled"] = ours ? old->value("webhook_enabled", false) : false;
      obj["webhook_key"] = ours ? old->value("webhook_key", Json(nullptr)) : Json(nullptr);
    } else if (c.kind == "sensor") {
      obj = Json{{"label", c.body["ref"]},
                 {"description", ""},
                 {"enabled", true},
                 {"param_schema", Json::object()},
                 {"config", Json::object()}};
      read_sensor_fields(f, c.body, obj, true);
      if (!f.ok()) return file_error(c.file, f.errors());
      if (auto err = set_runtime(c, obj)) return *err;
      if (c.body.value("builtin", false)) obj["builtin"] = true;
    } else if (c.kind == "rule") {
      apply_fields(f, c.body, rule_fields(), obj, true);
      if (!f.ok()) return file_error(c.file, f.errors());
      obj["trigger_ref"] = c.body["trigger_ref"];
      obj["action_ref"] = c.body["action_ref"];
      obj["trigger_params"] = c.body.value("trigger_params", Json::object());
      obj["action_params"] = c.body.value("action_params", Json::object());
      obj["is_adhoc"] = false;
      obj["owner_identity"] = owner;
      if (may_attach) {
        if (auto refused = may_attach(obj.value("permission_set_refs", Json()))) return *refused;
      }
    } else if (c.kind == "permission_set") {
      auto grants = authz::parse_grants(c.body.value("grants", Json::array()));
      if (!grants.ok()) return file_error(c.file, Json{{"grants", grants.error().message}});
      obj["grants"] = Json::array();
      for (const auto& g : *grants) obj["grants"].push_back(g.to_json());
      auto label = f.str("label", false, 1, 255);
      auto description = f.str_or_null("description");
      auto roles = f.has("roles") ? f.string_array("roles") : std::optional<Json>(Json::array());
      if (!f.ok()) return file_error(c.file, f.errors());
      obj["label"] = label ? Json(*label) : c.body["ref"];
      obj["description"] = description ? *description : Json("");
      obj["roles"] = roles ? *roles : Json::array();
    } else if (c.kind == "policy") {
      Json fields;
      auto policy = admission::normalize_policy(c.body, Json::object(), true, fields);
      if (!policy.ok()) return file_error(c.file, fields);
      obj = std::move(*policy);
      obj["name"] = c.body["ref"];
    } else {  // runtime: stored as written
      obj = c.body;
    }
    stamp(c.kind.c_str(), obj, full_ref);
    obj["pack"] = pack_id;
    built[c.kind][full_ref] = std::move(obj);
  }
  // Links between components: triggers and actions of this content first, then other packs'.
  auto lookup = [&](const char* kind, const std::string& r) -> JsonPtr {
    if (auto it = built[kind].find(r); it != built[kind].end()) {
      return std::make_shared<const Json>(it->second);
    }
    JsonPtr other = s.defs.get(kind, r);
    return other && detail::pack_ref_of(*other) != ref ? other : nullptr;
  };
  for (auto& [sref, sensor] : built["sensor"]) {
    const std::string file = file_of["sensor:" + sref];
    for (const auto& t : sensor["trigger_types"]) {
      const std::string tref = t.get<std::string>();
      if (!lookup("trigger", tref)) {
        return file_error(file, Json{{"trigger_types", "trigger '" + tref + "' does not exist"}});
      }
      if (auto it = built["trigger"].find(tref); it != built["trigger"].end()) {
        it->second["sensor"] = sensor["id"];
        it->second["sensor_ref"] = sref;
      }
    }
  }
  for (auto& [rref, rule] : built["rule"]) {
    const std::string file = file_of["rule:" + rref];
    JsonPtr trigger = lookup("trigger", rule["trigger_ref"].get<std::string>());
    if (!trigger) {
      return file_error(
          file, Json{{"trigger",
                      "trigger '" + rule["trigger_ref"].get<std::string>() + "' does not exist"}});
    }
    JsonPtr action = lookup("action", rule["action_ref"].get<std::string>());
    if (!action) {
      return file_error(file, Json{{"action", "action '" + rule["action_ref"].get<std::string>() +
                                                  "' does not exist"}});
    }
    Json errors = Json::object();
    if (!check_rule(rule, *trigger, errors)) return file_error(file, errors);
    rule["trigger"] = (*trigger)["id"];
    rule["action"] = (*action)["id"];
  }
  // A pack file's policy governs its own pack: an action of this content, the pack itself, or
  // (with an unconstrained grant) everything.
  for (auto& [pref, policy] : built["policy"]) {
    const std::string file = file_of["policy:" + pref];
    const Json scope = policy["scope"];
    const std::string type = scope.value("type", "global");
    policy["action"] = nullptr;
    policy["action_ref"] = nullptr;
    if (type == "action") {
      const std::string aref = scope.value("action_ref", "");
      auto it = built["action"].find(aref);
      if (it == built["action"].end()) {
        return file_error(file, Json{{"action_ref", "action '" + aref + "' is not in this pack"}});
      }
      policy["action"] = it->second["id"];
      policy["action_ref"] = aref;
    } else if (type == "pack" && scope.value("pack_ref", "") != ref) {
      return file_error(file, Json{{"pack_ref", "a pack's policy may govern only pack '" + ref +
                                                    "'"}});
    } else if (type == "global" && may_govern_all) {
      if (auto refused = may_govern_all()) return *refused;
    }
  }

  // Everything is valid. Across API instances (Kafka) a claim decides a race for a new ref; it
  // is taken only now, so refused content never holds the ref.
  auto claimant = s.claim("pack", ref, existing == nullptr);
  if (!claimant.ok()) return s.claim_failed(claimant.error(), "Pack '" + ref + "' already exists");
  // Move the files into place, then write.
  std::error_code ec;
  fs::create_directories(final_dir.parent_path(), ec);
  fs::rename(root, final_dir, ec);
  if (ec) {
    return error(Errc::kInternal,
                 "cannot move the pack into " + final_dir.string() + ": " + ec.message());
  }
  std::vector<OutRecord> records;
  // Components of the installed version that the new content lacks are deleted, with the rules
  // (of any pack) that used deleted actions or triggers.
  std::set<std::string> removed_rules;
  size_t removed = 0;
  auto remove = [&](const char* kind, const JsonPtr& obj) {
    const std::string r = (*obj)["ref"];
    if (std::string_view(kind) == "rule" && !removed_rules.insert(r).second) return;
    records.push_back(definition_tombstone(kind, r, (*obj)["id"], ts, "api"));
    ++removed;
  };
  std::set<std::string> gone_actions, gone_triggers;
  if (existing) {
    for (const char* kind : {"action", "workflow", "trigger", "rule", "sensor", "runtime",
                             "permission_set", "policy"}) {
      for (const auto& obj : s.defs.list(kind)) {
        if (detail::pack_ref_of(*obj) != ref || built[kind].count((*obj)["ref"])) continue;
        if (std::string_view(kind) == "permission_set") {  // its assignments go with it
          for (const auto& a : s.defs.list("permission_assignment")) {
            if (a->value("permission_set_ref", "") == (*obj)["ref"]) {
              records.push_back(definition_tombstone("permission_assignment", a->value("ref", ""),
                                                     (*a)["id"], ts, "api"));
            }
          }
        }
        if (sensor::is_builtin_sensor(*obj)) continue;
        if (std::string_view(kind) == "action") gone_actions.insert((*obj)["ref"]);
        if (std::string_view(kind) == "trigger") gone_triggers.insert((*obj)["ref"]);
        if (std::string_view(kind) == "sensor") {
          const std::string sref = (*obj)["ref"];
          if (auto identity = s.defs.get("identity", sensor::sensor_identity_login(sref));
              identity && identity->value("is_sensor", false)) {
            records.push_back(definition_tombstone(
                "identity", (*identity)["ref"].get<std::string>(), (*identity)["id"], ts, "api"));
          }
        }
        remove(kind, obj);
      }
    }
    for (const auto& rule : s.defs.list("rule")) {
      if (gone_actions.count(rule->value("action_ref", "")) ||
          gone_triggers.count(rule->value("trigger_ref", ""))) {
        if (!built["rule"].count((*rule)["ref"])) remove("rule", rule);
      }
    }
  }
  records.push_back(definition_record("pack", pack, ts, "api"));
  for (const char* kind : {"runtime", "action", "workflow", "trigger"}) {
    for (const auto& [r, obj] : built[kind])
      records.push_back(definition_record(kind, obj, ts, "api"));
  }
  for (const auto& [r, sensor] : built["sensor"]) {
    if (sensor::is_builtin_sensor(sensor)) {  // the platform's own: no process, no identity
      records.push_back(definition_record("sensor", sensor, ts, "api"));
      continue;
    }
    JsonPtr old = s.defs.get("sensor", r);
    for (auto& rec : s.sensor_records(sensor, old ? *old : Json(nullptr))) {
      records.push_back(std::move(rec));
    }
  }
  // Trigger links set by the sensors above are superseded by the triggers' own records below for
  // this pack's triggers (written last, so they win).
  for (const auto& [r, obj] : built["trigger"])
    records.push_back(definition_record("trigger", obj, ts, "api"));
  for (const auto& [r, obj] : built["rule"])
    records.push_back(definition_record("rule", obj, ts, "api"));
  for (const auto& [r, obj] : built["permission_set"]) {
    records.push_back(definition_record("permission_set", obj, ts, "api"));
  }
  for (const auto& [r, obj] : built["policy"]) {
    records.push_back(definition_record("policy", obj, ts, "api"));
  }
  s.claim_release(records, "pack", ref, *claimant);
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) {
    // The directory is removed by the next start's sweep if the write did not land.
    return Resp::error(st.error());
  }
  if (existing) {
    const Json old_path = existing->value("storage_path", Json(nullptr));
    if (old_path.is_string() && old_path.get<std::string>() != final_dir.string()) {
      remove_pack_files(old_path.get<std::string>());
    }
  }
  if (needs_env) build_environment(ref, final_dir.string());

  Json components = Json::object();
  for (const char* kind :
       {"action", "workflow", "trigger", "sensor", "rule", "runtime", "permission_set"}) {
    components[std::string(kind) + "s"] = built[kind].size();
  }
  components["policies"] = built["policy"].size();
  if (removed > 0) components["removed"] = removed;
  spdlog::info("pack {} {} installed ({} via {})", ref, version, final_dir.string(), method);
  return data(201, Json{{"pack", pack}, {"components", components}}, "Pack installed");
}

void PackInstaller::remove_pack_files(const std::string& storage_path) {
  if (s.options.packs_root.empty() || storage_path.empty()) return;
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(s.options.packs_root, ec);
  const fs::path dir = fs::weakly_canonical(storage_path, ec);
  if (ec || dir == root || !within(root, dir)) return;  // never outside our own directory
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("pack files {} not removed: {}", dir.string(), ec.message());
  fs::remove(dir.parent_path(), ec);  // the pack's directory, once empty
}

void PackInstaller::sweep_pack_dirs() {
  if (s.options.packs_root.empty()) return;
  // Only what is older than a few minutes: with a pack files directory shared by several API
  // instances, another instance may be in the middle of an install.
  const auto cutoff =
      fs::file_time_type::clock::now() -
      (s.options.shared_pack_files ? std::chrono::minutes(10) : std::chrono::minutes(0));
  auto old_enough = [&](const fs::path& p) {
    std::error_code ec;
    const auto t = fs::last_write_time(p, ec);
    return !ec && t <= cutoff;
  };
  std::error_code ec;
  const fs::path root(s.options.packs_root);
  for (const auto& staged : fs::directory_iterator(root / ".staging", ec)) {
    std::error_code ec2;
    if (old_enough(staged.path())) fs::remove_all(staged.path(), ec2);
  }
  std::set<std::string> live;
  for (const auto& p : s.defs.list("pack")) {
    const Json sp = p->value("storage_path", Json(nullptr));
    if (sp.is_string()) live.insert(fs::weakly_canonical(sp.get<std::string>(), ec).string());
  }
  for (const auto& pack_dir : fs::directory_iterator(root, ec)) {
    if (!pack_dir.is_directory(ec) || pack_dir.path().filename() == ".staging") continue;
    std::error_code ec2;
    for (const auto& version_dir : fs::directory_iterator(pack_dir.path(), ec2)) {
      const std::string path = fs::weakly_canonical(version_dir.path(), ec2).string();
      if (live.count(path) || !old_enough(version_dir.path())) continue;
      spdlog::info("removing files of a pack version no longer installed: {}", path);
      fs::remove_all(version_dir.path(), ec2);
    }
    fs::remove(pack_dir.path(), ec2);  // only when empty
  }
}

void PackInstaller::sweep_environments() {
  if (!s.options.environments) return;
  std::map<std::string, std::string> live;
  for (const auto& p : s.defs.list("pack")) {
    const Json sp = p->value("storage_path", Json(nullptr));
    if (sp.is_string()) live[p->value("ref", "")] = sp.get<std::string>();
  }
  for (const auto& path : runners::sweep_environments(s.options.environments->options(), live)) {
    spdlog::info("removed an environment no installed pack uses: {}", path);
  }
}

void PackInstaller::build_environment(const std::string& ref, const std::string& storage_path) {
  if (!s.options.environments) return;
  s.options.environments->build(
      ref, storage_path, [this, life = life_, ref, storage_path](runners::EnvironmentState state) {
        std::lock_guard alive(life->mu);
        if (!life->alive) return;
        set_pack_environment(ref, storage_path, state.to_json());
      });
}

void PackInstaller::set_pack_environment(const std::string& ref, const std::string& storage_path,
                                      Json environment) {
  std::lock_guard lock(s.write_mu);
  JsonPtr pack = s.defs.get("pack", ref);
  // A newer install (or a delete) wins over the outcome of an older build.
  if (!pack || pack->value("storage_path", Json(nullptr)) != Json(storage_path)) return;
  if (pack->value("environment", Json(nullptr)) == environment) return;
  Json updated = *pack;
  updated["environment"] = std::move(environment);
  updated["updated"] = s.now_str();
  auto st = s.write_definitions({definition_record("pack", updated, s.now_ms(), "api")});
  if (!st.ok())
    spdlog::warn("pack {}: environment state not recorded: {}", ref, st.error().message);
}

Status PackInstaller::install_core_pack() {
  if (s.options.packs_root.empty()) {
    return make_error(Errc::kInternal, "no pack directory configured (ServiceOptions::packs_root)");
  }
  JsonPtr core = s.defs.get("pack", "core");
  const std::string hash = packs::core_files_hash();
  if (core && core->value("meta", Json::object()).value("content_hash", "") == hash &&
      core->value("storage_path", Json(nullptr)).is_string() &&
      fs::exists(core->value("storage_path", std::string()))) {
    return {};  // installed and unchanged
  }
  const std::string staging = new_staging_dir();
  if (staging.empty()) return make_error(Errc::kInternal, "cannot create a staging directory");
  const fs::path root = fs::path(staging) / "core";
  if (auto st = packs::write_core_files(root, hash); !st.ok()) return st;
  auto resp = install_pack(staging, root.string(), "builtin", true, Json(nullptr));
  if (resp.status != 201) {
    return make_error(Errc::kInternal, "cannot install the core pack: " + resp.body);
  }
  return {};
}

void register_pack_routes(RouteTable& t, ServiceContext& s, PackInstaller& installer) {
  const std::string v1 = "/api/v1";
  auto bind_installer = [&s, &installer](Resp (*fn)(ServiceContext&, PackInstaller&, Call&)) {
    return [&s, &installer, fn](Call& c) { return fn(s, installer, c); };
  };
  t.add("GET", v1 + "/packs", Access::to("packs", "read"), bound(s, list_packs));
  t.add("POST", v1 + "/packs", Access::to("packs", "create"), bound(s, create_pack));
  t.add("GET", v1 + "/packs/{ref}", Access::to("packs", "read"), bound(s, get_pack));
  t.add("PUT", v1 + "/packs/{ref}", Access::to("packs", "configure"), bound(s, update_pack));
  t.add("DELETE", v1 + "/packs/{ref}", Access::to("packs", "delete"),
        bind_installer(delete_pack));
  t.add("POST", v1 + "/packs/upload", Access::to("packs", "install"),
        bind_installer(upload_pack));
  t.add("POST", v1 + "/packs/register", Access::to("packs", "install"),
        bind_installer(register_pack));
}

}  // namespace attune::service
