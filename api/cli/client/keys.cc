#include "api/cli/client/keys.h"

#include "api/cli/client/errors.h"

namespace attune::cli::client {

nlohmann::json key_create_body(const std::string& ref) {
  const size_t dot = ref.find('.');
  if (dot == std::string::npos) return {{"local_ref", ref}, {"owner_type", "system"}};
  const std::string type = ref.substr(0, dot);
  const size_t last = ref.rfind('.');
  const std::string local = ref.substr(last + 1);
  const std::string owner = last > dot ? ref.substr(dot + 1, last - dot - 1) : "";
  if (type == "system" && owner.empty()) return {{"local_ref", local}, {"owner_type", "system"}};
  if (owner.empty() || local.empty()) usage_error("cannot derive a key owner from '" + ref + "'");
  if (type == "pack")
    return {{"local_ref", local}, {"owner_type", "pack"}, {"owner_pack_ref", owner}};
  if (type == "action")
    return {{"local_ref", local}, {"owner_type", "action"}, {"owner_action_ref", owner}};
  if (type == "sensor")
    return {{"local_ref", local}, {"owner_type", "sensor"}, {"owner_sensor_ref", owner}};
  if (type == "identity") {
    return {{"local_ref", local}, {"owner_type", "identity"}, {"owner_identity_login", owner}};
  }
  usage_error("key ref '" + ref +
              "' must start with system., pack., action., sensor. or identity.");
}

}  // namespace attune::cli::client
