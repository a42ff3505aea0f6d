// The `attune` binary: `attune serve` runs the platform (api/cli/serve.cc); the other
// subcommands are the API client (api/cli/client/).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>

#include "api/cli/client/commands.h"
#include "api/cli/config.h"
#include "api/cli/serve.h"
#include "api/projections/retention.h"
#include "runners/subcommands.h"


int main(int argc, char** argv) {
  // Child processes of the worker's runners (runners/subcommands.h), hidden from --help.
  if (auto rc = attune::runners::run_hidden_subcommand(argc, argv)) return *rc;
  CLI::App app{
      "Attune: event-driven automation. When this happens, run that.\n"
      "Triggers fire events, rules match them and request executions, workers run actions."};
  app.set_version_flag("--version", std::string("attune 0.1.0"));
  app.require_subcommand(1);

  attune::cli::ServeConfig config;
  std::string config_file;
  auto* serve = app.add_subcommand(
      "serve",
      "Run the platform on one machine (embedded log): REST API, WebSocket notifier, rules, "
      "executor and worker stages.");
  auto* cfg = serve->add_option("--config", config_file,
                                "YAML file with any of: data_dir, listen, ws_listen, log_level, "
                                "api_url, notifier_url, partitions, node_id, http_threads, "
                                "max_body_bytes, fsync, allow_self_registration, "
                                "log_keep_records, log_retention_interval, broker, "
                                "kafka_config, roles, worker_name, worker_heartbeat_ms, "
                                "worker_timeout_ms, worker_max_running, action_timeout_seconds, "
                                "cancel_grace_ms, history_keep, public_ws_url, console_dir, packs_dirs, pack_files_dir, "
                                "pack_max_upload_bytes, pack_max_unpacked_bytes, pip_index_url, "
                                "pip_find_links, pip_extra_args, npm_extra_args, "
                                "container_engine, container_extra_args")
                  ->envname("ATTUNE_CONFIG");
  (void)cfg;
  std::optional<std::string> data_dir, listen, ws_listen, log_level, api_url, notifier_url;
  std::optional<int> partitions, node_id, http_threads;
  std::optional<bool> fsync;
  std::optional<int64_t> keep, retention_interval;
  serve->add_option("--data-dir", data_dir, "Data directory (default ./attune-data)")
      ->envname("ATTUNE_DATA_DIR");
  serve->add_option("--listen", listen, "REST API address host:port (default 127.0.0.1:8080; port 0 = any free port)")
      ->envname("ATTUNE_LISTEN");
  serve->add_option("--ws-listen", ws_listen,
                    "Notifier WebSocket address host:port (default 127.0.0.1:8081; port 0 = any free port)")
      ->envname("ATTUNE_WS_LISTEN");
  serve->add_option("--log-level", log_level, "trace, debug, info (default), warn, error")
      ->envname("ATTUNE_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  serve->add_option("--api-url", api_url,
                    "Base URL actions use to call the API back (ATTUNE_API_URL; default from --listen)")
      ->envname("ATTUNE_API_URL");
  serve->add_option("--notifier-url", notifier_url,
                    "Notifier WebSocket URL sensors follow rule changes on "
                    "(ATTUNE_NOTIFIER_WS_URL; default from --ws-listen)")
      ->envname("ATTUNE_NOTIFIER_URL");
  serve->add_option("--partitions", partitions, "Partitions per work topic on a new data directory (default 4)")
      ->envname("ATTUNE_PARTITIONS")
      ->check(CLI::Range(1, 64));
  serve->add_option("--node-id", node_id, "Node id 0..15 for cluster-unique ids (default 0)")
      ->envname("ATTUNE_NODE_ID")
      ->check(CLI::Range(0, 15));
  serve->add_option("--http-threads", http_threads, "REST request threads (default 4)")
      ->envname("ATTUNE_HTTP_THREADS")
      ->check(CLI::Range(1, 256));
  serve->add_option("--fsync", fsync, "fsync every commit (survives power loss, slower; default false)")
      ->envname("ATTUNE_FSYNC");

  serve->add_option("--log-keep-records", keep,
                    "Records kept per log partition after every stage has consumed them "
                    "(default 10000; older ones are deleted)")
      ->envname("ATTUNE_LOG_KEEP_RECORDS")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  serve->add_option("--log-retention-interval", retention_interval,
                    "Seconds between log retention passes (default 60)")
      ->envname("ATTUNE_LOG_RETENTION_INTERVAL")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}));

  std::optional<std::string> broker, roles, worker_name;
  std::vector<std::string> kafka_config;
  std::optional<int64_t> heartbeat_ms, worker_timeout_ms, worker_max_running, action_timeout,
      cancel_grace;
  serve->add_option("--broker", broker,
                    "Kafka bootstrap servers host:port[,...]: run distributed on Kafka instead of "
                    "the embedded log")
      ->envname("ATTUNE__KAFKA__BROKERS");
  serve->add_option("--kafka-config", kafka_config,
                    "librdkafka property key=value for every Kafka client (repeatable; e.g. "
                    "security.protocol=SASL_SSL)");
  serve->add_option("--roles", roles,
                    "Comma list of api,sensor,rules,executor,worker to run in this process "
                    "(default all)")
      ->envname("ATTUNE_ROLES");
  serve->add_option("--worker-name", worker_name,
                    "Name this worker reports (default: host name; on Kafka <host>-<node id>)")
      ->envname("ATTUNE_WORKER_NAME");
  serve->add_option("--worker-heartbeat-ms", heartbeat_ms, "Worker heartbeat interval (default 1000)")
      ->check(CLI::Range(int64_t{50}, int64_t{600000}));
  serve->add_option("--worker-timeout-ms", worker_timeout_ms,
                    "A worker silent this long is inactive and its running executions are "
                    "abandoned (default 10000)")
      ->check(CLI::Range(int64_t{200}, int64_t{3600000}));
  serve->add_option("--worker-max-running", worker_max_running,
                    "Action processes a worker runs at once; later dispatches wait their turn "
                    "(default 64)")
      ->envname("ATTUNE_WORKER_MAX_RUNNING")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));

  serve->add_option("--action-timeout", action_timeout,
                    "Seconds an action may run when neither the execution, its workflow task nor "
                    "the action sets timeout_seconds (default 300)")
      ->envname("ATTUNE_ACTION_TIMEOUT")
      ->check(CLI::Range(int64_t{1}, int64_t{7 * 24 * 3600}));
  serve->add_option("--cancel-grace-ms", cancel_grace,
                    "Cancel of a running action: SIGINT, then SIGTERM, then SIGKILL this many "
                    "milliseconds apart (default 5000)")
      ->envname("ATTUNE_CANCEL_GRACE_MS")
      ->check(CLI::Range(int64_t{10}, int64_t{600000}));

  std::optional<std::string> public_ws_url, console_dir;
  serve->add_option("--public-ws-url", public_ws_url,
                    "Notifier URL API clients (CLI, web console) are told in GET /health/detailed "
                    "(default ws://<host the client used>:<ws port>/ws; set it behind a proxy)")
      ->envname("ATTUNE_PUBLIC_WS_URL");
  serve->add_option("--console-dir", console_dir,
                    "The built web console served at / (default <directory of this binary>/console, "
                    "where `bash cmake/dev.sh build` puts it)")
      ->envname("ATTUNE_CONSOLE_DIR");
  bool detach = false;
  int detach_timeout = 120;
  serve->add_flag("--detach", detach,
                  "Start in the background (log <data dir>/serve.log, pid <data dir>/serve.pid) "
                  "and return once the server is ready: 0 ready, 1 with the log's last lines if not");
  serve->add_option("--detach-timeout", detach_timeout,
                    "Seconds --detach waits for the server to be ready (default 120)")
      ->check(CLI::Range(1, 3600));

  std::optional<std::string> history_keep;
  serve->add_option("--history-keep", history_keep,
                    "Execution history kept: all (default), the newest N terminal executions "
                    "(e.g. 1000), or an age (30s, 15m, 12h, 7d); events and enforcements follow")
      ->envname("ATTUNE_HISTORY_KEEP");

  std::vector<std::string> packs_dirs, pip_find_links, pip_extra_args, npm_extra_args,
      container_extra_args;
  std::optional<int64_t> pack_max_upload, pack_max_unpacked;
  std::optional<std::string> pip_index_url, container_engine, pack_files_dir;
  serve->add_option("--pack-files-dir", pack_files_dir,
                    "Where installed pack files live (default <data dir>/packs; distributed: a "
                    "volume shared by API and worker hosts at the same path)")
      ->envname("ATTUNE_PACK_FILES_DIR");
  serve->add_option("--packs-dir", packs_dirs,
                    "Directory POST /api/v1/packs/register may load packs from (repeatable; "
                    "ATTUNE_PACKS_DIR: colon-separated)")
      ->envname("ATTUNE_PACKS_DIR")
      ->delimiter(':');
  serve->add_option("--pack-max-upload-bytes", pack_max_upload,
                    "Largest pack archive POST /packs/upload accepts (default 64 MiB)")
      ->envname("ATTUNE_PACK_MAX_UPLOAD_BYTES")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 40));
  serve->add_option("--pack-max-unpacked-bytes", pack_max_unpacked,
                    "Most bytes a pack archive may expand to (default 512 MiB)")
      ->envname("ATTUNE_PACK_MAX_UNPACKED_BYTES")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 42));
  serve->add_option("--pip-index-url", pip_index_url,
                    "pip --index-url for python pack environments")
      ->envname("ATTUNE_PIP_INDEX_URL");
  serve->add_option("--pip-find-links", pip_find_links,
                    "pip --find-links for python pack environments (repeatable)")
      ->envname("ATTUNE_PIP_FIND_LINKS");
  serve->add_option("--pip-extra-arg", pip_extra_args,
                    "Extra argument for pip install (repeatable, e.g. --no-index)")
      ->envname("ATTUNE_PIP_EXTRA_ARGS");
  serve->add_option("--npm-extra-arg", npm_extra_args,
                    "Extra argument for npm install/ci (repeatable, e.g. --offline)")
      ->envname("ATTUNE_NPM_EXTRA_ARGS");
  serve->add_option("--container-engine", container_engine,
                    "Container engine for container actions (default podman)")
      ->envname("ATTUNE_CONTAINER_ENGINE");
  serve->add_option("--container-extra-arg", container_extra_args,
                    "Extra argument for every container run (repeatable)")
      ->envname("ATTUNE_CONTAINER_EXTRA_ARGS");

  attune::cli::client::ClientCommands client(app);  // login, pack, action, execution, ...
  if (auto rc = attune::cli::client::parse_command_line(app, argc, argv)) return *rc;
  if (auto rc = client.run()) return *rc;

  if (serve->parsed()) {
    if (!config_file.empty()) {
      auto st = attune::cli::load_config_file(config_file, config);
      if (!st.ok()) {
        std::fprintf(stderr, "attune: %s\n", st.error().message.c_str());
        return 2;
      }
    }
    if (data_dir) config.data_dir = *data_dir;
    if (listen) config.listen = *listen;
    if (ws_listen) config.ws_listen = *ws_listen;
    if (log_level) config.log_level = *log_level;
    if (api_url) config.advertised_url = *api_url;
    if (notifier_url) config.notifier_url = *notifier_url;
    if (partitions) config.partitions = *partitions;
    if (node_id) config.node_id = *node_id;
    if (http_threads) config.http_threads = *http_threads;
    if (fsync) config.fsync = *fsync;
    if (keep) config.log_keep_records = *keep;
    if (retention_interval) config.log_retention_interval_s = *retention_interval;
    if (broker) config.broker = *broker;
    if (!kafka_config.empty()) config.kafka_config = kafka_config;
    if (roles) config.roles = *roles;
    if (worker_name) config.worker_name = *worker_name;
    if (heartbeat_ms) config.worker_heartbeat_ms = *heartbeat_ms;
    if (worker_timeout_ms) config.worker_timeout_ms = *worker_timeout_ms;
    if (worker_max_running) config.worker_max_running = *worker_max_running;
    if (action_timeout) config.action_timeout_seconds = *action_timeout;
    if (cancel_grace) config.cancel_grace_ms = *cancel_grace;
    if (history_keep) config.history_keep = *history_keep;
    if (public_ws_url) config.public_ws_url = *public_ws_url;
    if (console_dir) config.console_dir = *console_dir;
    if (!packs_dirs.empty()) config.packs_dirs = packs_dirs;
    if (pack_files_dir) config.pack_files_dir = *pack_files_dir;
    if (pack_max_upload) config.pack_max_upload_bytes = *pack_max_upload;
    if (pack_max_unpacked) config.pack_max_unpacked_bytes = *pack_max_unpacked;
    if (pip_index_url) config.pip_index_url = *pip_index_url;
    if (!pip_find_links.empty()) config.pip_find_links = pip_find_links;
    if (!pip_extra_args.empty()) config.pip_extra_args = pip_extra_args;
    if (!npm_extra_args.empty()) config.npm_extra_args = npm_extra_args;
    if (container_engine) config.container_engine = *container_engine;
    if (!container_extra_args.empty()) config.container_extra_args = container_extra_args;
    if (auto keep = attune::projections::parse_history_keep(config.history_keep); !keep.ok()) {
      std::fprintf(stderr, "attune: --history-keep (ATTUNE_HISTORY_KEEP, history_keep): %s\n",
                   keep.error().message.c_str());
      return 2;
    }
    if (const char* v = std::getenv("ATTUNE__SECURITY__ALLOW_SELF_REGISTRATION")) {
      config.allow_self_registration = std::string(v) != "false" && std::string(v) != "0";
    }
    if (detach) return attune::cli::run_serve_detached(config, detach_timeout);
    return attune::cli::run_serve(config);
  }
  return 0;
}
