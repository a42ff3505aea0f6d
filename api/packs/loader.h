// Pack loader (API.md §8): a pack directory's layout and YAML → the bodies of its definitions,
// with errors that name the file, line and field. Pure apart from reading the directory; the
// API service validates each body with the same field rules as the REST routes and writes them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::packs {

// Why a pack was refused: the HTTP status (400, 422), where, and why.
struct PackError {
  int status = 422;
  std::string file;  // relative to the pack root; "" when not about one file
  int line = 0;      // 1-based; 0 when unknown
  std::string field;
  std::string message;

  // "actions/a.yaml:3: runner_type: unknown runner 'perl'".
  std::string text() const;
  // {"file", "line"?, "field"?} for the error answer's details.
  Json details() const;
};

// One definition found in the pack, in API field names (param_schema, entrypoint, runtime_ref,
// trigger_ref, action_params, ...), with `ref` = the bare name (the service prefixes the pack
// ref) and refs to other objects already qualified (`<pack>.` added to unqualified ones).
struct Component {
  // action | workflow | trigger | sensor | rule | runtime | permission_set | policy
  std::string kind;
  std::string file;  // relative to the pack root
  Json body;
};

struct PackContent {
  Json pack;  // pack.yaml in API field names, with `ref`
  std::vector<Component> components;
  bool python_requirements = false;  // requirements.txt at the root
  bool node_package = false;         // package.json at the root
};

// Reads a pack directory. Errors: no pack.yaml (400), YAML that does not parse (422 with file and
// line), a document or field of the wrong shape, an unknown runner, an entry point that is not a
// file of the pack, duplicate names (422 with file and field). Keys starting with "__" and
// unknown files or keys are ignored.
Result<PackContent> load_pack(const std::filesystem::path& root, PackError& error);

// Valid pack refs and component names (API.md §2.3).
bool valid_pack_ref(const std::string& ref);
bool valid_component_name(const std::string& name);

}  // namespace attune::packs
