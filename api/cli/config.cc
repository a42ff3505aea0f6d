#include "api/cli/config.h"

#include <yaml-cpp/yaml.h>

namespace attune::cli {

Result<HostPort> parse_host_port(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(Errc::kBadRequest, "invalid address '" + text + "': use [v6addr]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      return make_error(Errc::kBadRequest, "invalid address '" + text + "': use host:port");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) host = "0.0.0.0";
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return make_error(Errc::kBadRequest, "invalid port in '" + text + "'");
  }
  return HostPort{host, static_cast<uint16_t>(std::stoi(port))};
}

Status load_config_file(const std::string& path, ServeConfig& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return make_error(Errc::kBadRequest, "cannot read config file " + path + ": " + e.what());
  }
  if (!root.IsMap()) {
    if (root.IsNull()) return {};
    return make_error(Errc::kBadRequest, "config file " + path + " must be a YAML mapping");
  }
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "data_dir") {
        config.data_dir = v.as<std::string>();
      } else if (key == "listen") {
        config.listen = v.as<std::string>();
      } else if (key == "ws_listen") {
        config.ws_listen = v.as<std::string>();
      } else if (key == "log_level") {
        config.log_level = v.as<std::string>();
      } else if (key == "api_url") {
        config.advertised_url = v.as<std::string>();
      } else if (key == "notifier_url") {
        config.notifier_url = v.as<std::string>();
      } else if (key == "public_ws_url") {
        config.public_ws_url = v.as<std::string>();
      } else if (key == "console_dir") {
        config.console_dir = v.as<std::string>();
      } else if (key == "partitions") {
        config.partitions = v.as<int>();
      } else if (key == "node_id") {
        config.node_id = v.as<int>();
      } else if (key == "http_threads") {
        config.http_threads = v.as<int>();
      } else if (key == "max_body_bytes") {
        config.max_body_bytes = v.as<size_t>();
      } else if (key == "log_keep_records") {
        config.log_keep_records = v.as<int64_t>();
      } else if (key == "log_retention_interval") {
        config.log_retention_interval_s = v.as<int64_t>();
        if (config.log_retention_interval_s < 1 || config.log_retention_interval_s > 86400) {
          return make_error(Errc::kBadRequest,
                            "config file " + path + ": log_retention_interval must be 1..86400");
        }
      } else if (key == "fsync") {
        config.fsync = v.as<bool>();
      } else if (key == "broker") {
        config.broker = v.as<std::string>();
      } else if (key == "kafka_config") {
        for (const auto& item : v) config.kafka_config.push_back(item.as<std::string>());
      } else if (key == "roles") {
        config.roles = v.as<std::string>();
      } else if (key == "worker_name") {
        config.worker_name = v.as<std::string>();
      } else if (key == "worker_heartbeat_ms") {
        config.worker_heartbeat_ms = v.as<int64_t>();
      } else if (key == "worker_timeout_ms") {
        config.worker_timeout_ms = v.as<int64_t>();
      } else if (key == "worker_max_running") {
        config.worker_max_running = v.as<int64_t>();
        if (config.worker_max_running < 1 || config.worker_max_running > 100000) {
          return make_error(Errc::kBadRequest,
                            "config file " + path + ": worker_max_running must be 1..100000");
        }
      } else if (key == "action_timeout_seconds") {
        config.action_timeout_seconds = v.as<int64_t>();
        if (config.action_timeout_seconds < 1 || config.action_timeout_seconds > 7 * 24 * 3600) {
          return make_error(Errc::kBadRequest, "config file " + path +
                                                   ": action_timeout_seconds must be 1..604800");
        }
      } else if (key == "cancel_grace_ms") {
        config.cancel_grace_ms = v.as<int64_t>();
        if (config.cancel_grace_ms < 10 || config.cancel_grace_ms > 600000) {
          return make_error(Errc::kBadRequest,
                            "config file " + path + ": cancel_grace_ms must be 10..600000");
        }
      } else if (key == "history_keep") {
        config.history_keep = v.as<std::string>();
      } else if (key == "packs_dirs" || key == "packs_dir") {
        if (v.IsSequence()) {
          for (const auto& item : v) config.packs_dirs.push_back(item.as<std::string>());
        } else {
          config.packs_dirs.push_back(v.as<std::string>());
        }
      } else if (key == "pack_files_dir") {
        config.pack_files_dir = v.as<std::string>();
      } else if (key == "pack_max_upload_bytes") {
        config.pack_max_upload_bytes = v.as<int64_t>();
      } else if (key == "pack_max_unpacked_bytes") {
        config.pack_max_unpacked_bytes = v.as<int64_t>();
      } else if (key == "pip_index_url") {
        config.pip_index_url = v.as<std::string>();
      } else if (key == "pip_find_links" || key == "pip_extra_args" || key == "npm_extra_args" ||
                 key == "container_extra_args") {
        auto& list = key == "pip_find_links"   ? config.pip_find_links
                     : key == "pip_extra_args" ? config.pip_extra_args
                     : key == "npm_extra_args" ? config.npm_extra_args
                                               : config.container_extra_args;
        if (v.IsSequence()) {
          for (const auto& item : v) list.push_back(item.as<std::string>());
        } else {
          list.push_back(v.as<std::string>());
        }
      } else if (key == "container_engine") {
        config.container_engine = v.as<std::string>();
      } else if (key == "allow_self_registration") {
        config.allow_self_registration = v.as<bool>();
      } else {
        return make_error(Errc::kBadRequest, "config file " + path + ": unknown key '" + key + "'");
      }
    }
  } catch (const YAML::Exception& e) {
    return make_error(Errc::kBadRequest, "config file " + path + ": " + e.what());
  }
  return {};
}

}  // namespace attune::cli
