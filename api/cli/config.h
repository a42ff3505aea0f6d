// Configuration of `attune serve`: defaults < --config YAML file < ATTUNE_* environment <
// command-line flags. Validation errors are reported with the offending option.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "topology/core/result.h"

namespace attune::cli {

struct ServeConfig {
  std::string data_dir = "./attune-data";
  std::string listen = "127.0.0.1:8080";
  std::string ws_listen = "127.0.0.1:8081";
  std::string log_level = "info";
  std::string advertised_url;  // ATTUNE_API_URL for actions; default http://<listen>
  std::string notifier_url;    // ATTUNE_NOTIFIER_WS_URL for sensors; default ws://<ws-listen>/ws
  // The notifier URL API clients (CLI, console) are told in GET /health/detailed; default
  // ws://<host the client reached the API by>:<ws port>/ws. Set it behind a proxy.
  std::string public_ws_url;
  std::string console_dir;  // the built web console; default <directory of the binary>/console
  int partitions = 4;
  int node_id = 0;
  int http_threads = 4;
  size_t max_body_bytes = 1 << 20;
  bool allow_self_registration = true;
  bool fsync = false;
  int64_t log_keep_records = 10000;  // per partition, once every reader has consumed them
  int64_t log_retention_interval_s = 60;  // seconds between retention passes
  // Distributed mode (README "Running distributed"): Kafka bootstrap servers; empty ⇒ the
  // embedded log. Each --kafka-config is a librdkafka "key=value".
  std::string broker;
  std::vector<std::string> kafka_config;
  std::string roles = "api,sensor,rules,executor,worker";
  std::string worker_name;             // empty ⇒ host name (embedded) or <host>-<node id> (Kafka)
  int64_t worker_heartbeat_ms = 1000;  // worker announcement interval
  int64_t worker_timeout_ms = 10000;   // no heartbeat for this long ⇒ inactive, work abandoned
  int64_t worker_max_running = 64;     // action processes at once per worker
  int64_t action_timeout_seconds = 300;  // an action's timeout when nothing else sets one
  int64_t cancel_grace_ms = 5000;        // cancel: SIGINT, SIGTERM, SIGKILL this far apart
  // History retention (issue 13, api/projections/retention.h): "all", a count or an age.
  std::string history_keep = "all";
  // Packs (issue 14, README "Packs"): directories POST /packs/register may load from; upload
  // limits (archive size, and what it may expand to).
  std::vector<std::string> packs_dirs;
  std::string pack_files_dir;  // installed pack files; empty ⇒ <data dir>/packs
  int64_t pack_max_upload_bytes = 64LL << 20;
  int64_t pack_max_unpacked_bytes = 512LL << 20;
  // Runners (README "Runners"): pip settings for python environments, npm arguments for node
  // ones, the container engine.
  std::string pip_index_url;
  std::vector<std::string> pip_find_links;
  std::vector<std::string> pip_extra_args;
  std::vector<std::string> npm_extra_args;
  std::string container_engine = "podman";
  std::vector<std::string> container_extra_args;
  // --detach (not a config key): the pipe serve writes one line to once it is ready.
  int ready_fd = -1;
};

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "host:port", "[v6]:port" or ":port"; port 0 is allowed (ephemeral).
Result<HostPort> parse_host_port(const std::string& text);

// Reads a YAML file of the same keys as ServeConfig (data_dir, listen, ws_listen, log_level,
// partitions, node_id, http_threads, max_body_bytes, api_url, fsync) over `config`.
Status load_config_file(const std::string& path, ServeConfig& config);

}  // namespace attune::cli
