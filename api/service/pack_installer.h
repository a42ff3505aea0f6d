// PackInstaller (API.md §8): installs a pack directory — validated whole, files moved to
// <packs_root>/<ref>/<version>-<id>, every definition written in one batch — and keeps the pack
// directories and environments tidy. Used by the packs routes (upload, register) and by
// ApiService::bootstrap (the built-in core pack). Implemented in pack_routes.cc.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <string>

#include "api/rest/http.h"
#include "api/service/context.h"

namespace attune::service {

class PackInstaller {
 public:
  explicit PackInstaller(ServiceContext& s) : s(s), life_(std::make_shared<Life>()) {}
  ~PackInstaller();

  // Installs the pack at `root` (inside `staging`, which is removed afterwards): validates all of
  // it, moves its files to their version directory, writes every definition in one batch.
  // `owner`: the installing identity's id (null: ownerless, e.g. the core pack).
  // `may_replace(ref)`: the refusal when an existing pack may not be replaced by this caller.
  // `may_attach(refs)`: the refusal when a rule's permission_set_refs name sets the caller may
  // not hand out.
  // `may_govern_all()`: the refusal when the caller may not install a global policy (API.md §15).
  using ReplaceCheck = std::function<std::optional<rest::HttpResponse>(const std::string& ref)>;
  using AttachCheck = std::function<std::optional<rest::HttpResponse>(const Json& refs)>;
  using GlobalCheck = std::function<std::optional<rest::HttpResponse>()>;
  rest::HttpResponse install_pack(const std::string& staging, const std::string& root,
                                  const std::string& method, bool force, Json owner,
                                  const ReplaceCheck& may_replace = {},
                                  const AttachCheck& may_attach = {},
                                  const GlobalCheck& may_govern_all = {});
  std::string new_staging_dir();
  // Removes an installed version's directory (only below packs_root).
  void remove_pack_files(const std::string& storage_path);
  // Startup: removes staging leftovers and version directories no pack points at.
  void sweep_pack_dirs();
  // Startup: removes python/node environments no installed pack content uses.
  void sweep_environments();
  Status install_core_pack();

 private:
  // Lifetime guard for environment builds that finish after the installer is gone.
  struct Life {
    std::mutex mu;
    bool alive = true;
  };
  void build_environment(const std::string& ref, const std::string& storage_path);
  void set_pack_environment(const std::string& ref, const std::string& storage_path,
                            Json environment);

  ServiceContext& s;
  std::shared_ptr<Life> life_;
};

}  // namespace attune::service
