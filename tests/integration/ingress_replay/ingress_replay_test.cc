// Kafka-ingress replay (API.md §18, DESIGN.md §4): the API service, the ingress stage and the
// rules/executor/worker stages over a temp EmbeddedLog. A second ingress stage under another
// name (its own offsets) processes every ingress record again, exactly what a crash between the
// event write and the offset commit does. Each record must still yield exactly one event (its
// id derived from the record's position), one enforcement and one execution.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "api/auth/jwt.h"
#include "api/projections/projections.h"
#include "api/rest/router.h"
#include "api/service/distributed.h"
#include "api/service/metrics.h"
#include "api/service/service.h"
#include "processors/pipeline.h"
#include "topology/embedded_log.h"
#include "topology/runtime.h"

namespace attune::service {
namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxBody = 1 << 20;

class IngressReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-ingress-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    auto db = state::Db::open((dir_ / "db").string());
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(2));
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    defs_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(defs_->start().ok());

    RuntimeOptions ro;
    ro.ids = &ids_;
    ro.clock = &SystemClock::instance();
    runtime_ = std::make_unique<Runtime>(*log_, topology_, ro);
    auto stage = projections::make_projection_stage(*log_, runtime_->applied());
    ASSERT_TRUE(stage.ok()) << stage.error().message;
    topology_.add(std::move(stage->spec));
    views_ = stage->projections;

    ServiceOptions service_options;
    service_options.packs_root = (dir_ / "packs").string();
    api_ = std::make_unique<ApiService>(*log_, *defs_, *views_, jwt_, ids_,
                                        SystemClock::instance(), metrics_, service_options);
    BootstrapOptions bootstrap;
    bootstrap.admin = "admin:" + kPassword;
    bootstrap.data_dir = dir_.string();
    ASSERT_TRUE(api_->bootstrap(bootstrap).ok());
    api_->register_routes(router_);

    add_ingress_stage(topology_, router_, metrics_, kMaxBody);
    // The replay: the same records through a second processor with offsets of its own.
    topology_.add({"attune-ingress-replay",
                   {std::string(topics::kWebhooks), std::string(topics::kEventsIngress)},
                   {},
                   1,
                   64,
                   [this](int) { return make_ingress_processor(router_, metrics_, kMaxBody); }});
    PipelineOptions pipeline;
    pipeline.definitions = defs_.get();
    pipeline.api_url = "http://api.test";
    pipeline.worker_name = "w1";
    add_core_stages(topology_, pipeline);
    ASSERT_TRUE(runtime_->start().ok());

    auto login = call("POST", "/auth/login", Json{{"login", "admin"}, {"password", kPassword}});
    ASSERT_EQ(login.status, 200) << login.body;
    token_ = Json::parse(login.body)["data"]["access_token"];
  }

  void TearDown() override {
    if (runtime_) runtime_->stop();
    runtime_.reset();
    api_.reset();
    views_.reset();
    if (defs_) defs_->stop();
    defs_.reset();
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  rest::HttpResponse call(const std::string& method, const std::string& path,
                          const Json& body = nullptr) {
    rest::HttpRequest req;
    req.method = method;
    const auto q = path.find('?');
    req.path = path.substr(0, q);
    if (q != std::string::npos) {
      std::string rest = path.substr(q + 1);
      while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string kv = rest.substr(0, amp);
        const auto eq = kv.find('=');
        req.query.emplace(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
        rest = amp == std::string::npos ? "" : rest.substr(amp + 1);
      }
    }
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.emplace_back("Content-Type", "application/json");
    }
    if (!token_.empty()) req.headers.emplace_back("Authorization", "Bearer " + token_);
    req.remote_ip = "127.0.0.1";
    return router_.dispatch(req).resolve();
  }

  Json data(const std::string& method, const std::string& path, const Json& body, int status) {
    auto r = call(method, path, body);
    EXPECT_EQ(r.status, status) << method << " " << path << ": " << r.body;
    Json j = Json::parse(r.body, nullptr, false);
    return j.is_object() ? j.value("data", Json()) : Json();
  }

  Json items(const std::string& path) {
    auto r = call("GET", path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return Json::parse(r.body)["items"];
  }

  // pack + shell action + trigger (webhook enabled) + rule; returns the webhook key.
  std::string flow(const std::string& p) {
    data("POST", "/api/v1/packs", {{"ref", p}, {"label", p}, {"version", "1.0.0"}}, 201);
    data("POST", "/api/v1/actions",
         {{"ref", p + ".act"}, {"pack_ref", p}, {"label", "act"},
          {"entrypoint", "echo \"tag=$tag\""}, {"runtime_ref", "core.shell"}},
         201);
    data("POST", "/api/v1/triggers", {{"ref", p + ".hook"}, {"pack_ref", p}, {"label", "hook"}},
         201);
    Json hook = data("POST", "/api/v1/triggers/" + p + ".hook/webhooks/enable", nullptr, 200);
    data("POST", "/api/v1/rules",
         {{"ref", p + ".rule"}, {"pack_ref", p}, {"label", "rule"}, {"trigger_ref", p + ".hook"},
          {"action_ref", p + ".act"}, {"action_params", {{"tag", "{{ event.payload.tag }}"}}}},
         201);
    return hook.value("webhook_key", "");
  }

  // Produces one ingress record; returns its position.
  TopicPartition produce(std::string_view topic, const std::string& key, const std::string& value,
                         std::vector<std::pair<std::string, std::string>> headers = {},
                         int64_t* offset = nullptr) {
    OutRecord r{std::string(topic), key, value};
    r.headers = std::move(headers);
    auto pos = log_->produce({std::move(r)});
    EXPECT_TRUE(pos.ok());
    if (offset) *offset = (*pos)[0].offset;
    return (*pos)[0].tp;
  }

  // Waits until both ingress stages consumed the record at (tp, offset), and the rules stage
  // every event they produced.
  void settle(const TopicPartition& tp, int64_t offset) {
    ASSERT_TRUE(runtime_->applied().wait(std::string(kIngressStage), tp, offset, 20s));
    ASSERT_TRUE(runtime_->applied().wait("attune-ingress-replay", tp, offset, 20s));
    const std::string events(topics::kEvents);
    for (int32_t p = 0; p < log_->partitions(events); ++p) {
      const int64_t end = log_->end_offset({events, p});
      if (end > 0) {
        ASSERT_TRUE(runtime_->applied().wait("rules", {events, p}, end - 1, 20s));
      }
    }
  }

  // Waits until the rule's executions are all terminal (at least `n`); returns them.
  Json terminal_executions(const std::string& rule_ref, size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    Json ex;
    while (std::chrono::steady_clock::now() < deadline) {
      ex = items("/api/v1/executions?rule_ref=" + rule_ref);
      bool done = ex.size() >= n;
      for (const auto& e : ex) {
        const std::string s = e.value("status", "");
        done = done && (s == "completed" || s == "failed" || s == "timeout" ||
                        s == "cancelled" || s == "abandoned");
      }
      if (done) return ex;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "executions of " << rule_ref << " not terminal: " << ex.dump();
    return ex;
  }

  size_t event_records(int64_t id) {
    size_t n = 0;
    auto reader = log_->reader({std::string(topics::kEvents)});
    EXPECT_TRUE(reader.ok());
    for (;;) {
      auto batch = (*reader)->poll(4096, 200ms);
      if (batch.empty()) return n;
      for (const Record& r : batch) {
        Envelope e;
        std::string err;
        if (Envelope::parse(r.value, e, err) && e.id == id) ++n;
      }
    }
  }

  const std::string kPassword = "Ingress-Replay-Pw-42!";
  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<EmbeddedLog> log_;
  std::unique_ptr<DefinitionsTable> defs_;
  IdGenerator ids_{1, SystemClock::instance()};
  Metrics metrics_;
  auth::JwtCodec jwt_{"ingress-replay-test-secret-0123456789abcdef"};
  Topology topology_;
  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<projections::Projections> views_;
  std::unique_ptr<ApiService> api_;
  rest::Router router_;
  std::string token_;
};

TEST_F(IngressReplayTest, WebhookRecordProcessedTwiceYieldsOneEventEnforcementExecution) {
  const std::string key = flow("replay_wh");
  ASSERT_FALSE(key.empty());
  int64_t offset = -1;
  const auto tp = produce(topics::kWebhooks, key, R"({"payload":{"tag":"once"}})", {}, &offset);
  settle(tp, offset);

  const auto id = ingress_event_id(IngressSource::kWebhooks, tp.partition, offset);
  ASSERT_TRUE(id);
  EXPECT_EQ(event_records(*id), 2u) << "both ingress stages must have written the event";
  Json events = items("/api/v1/events?trigger_ref=replay_wh.hook");
  ASSERT_EQ(events.size(), 1u) << events.dump();
  EXPECT_EQ(events[0]["id"], *id);
  EXPECT_EQ(events[0]["source_ref"], "webhook");
  // The projection's counters count the event once (pagination total comes from them).
  auto r = call("GET", "/api/v1/events?trigger_ref=replay_wh.hook");
  EXPECT_EQ(Json::parse(r.body)["pagination"]["total_items"], 1) << r.body;

  Json execs = terminal_executions("replay_wh.rule", 1);
  ASSERT_EQ(execs.size(), 1u) << execs.dump();
  EXPECT_EQ(execs[0]["status"], "completed") << execs.dump();
  Json enfs = items("/api/v1/enforcements?rule_ref=replay_wh.rule");
  ASSERT_EQ(enfs.size(), 1u) << enfs.dump();
  EXPECT_EQ(enfs[0]["event"], *id);
  EXPECT_EQ(execs[0]["enforcement"], enfs[0]["id"]);
  auto full = data("GET", "/api/v1/executions/" + execs[0]["id"].dump(), nullptr, 200);
  EXPECT_EQ(full["result"]["stdout"], "tag=once\n") << full.dump();
}

TEST_F(IngressReplayTest, EventsIngressRecordProcessedTwiceYieldsOneEventWithoutToken) {
  flow("replay_ev");
  const Json body = {{"trigger_ref", "replay_ev.hook"},
                     {"payload", {{"tag", "evt"}}},
                     {"api_token", token_}};
  int64_t offset = -1;
  const auto tp = produce(topics::kEventsIngress, "any", body.dump(), {}, &offset);
  settle(tp, offset);

  const auto id = ingress_event_id(IngressSource::kEvents, tp.partition, offset);
  ASSERT_TRUE(id);
  EXPECT_EQ(event_records(*id), 2u);
  Json events = items("/api/v1/events?trigger_ref=replay_ev.hook");
  ASSERT_EQ(events.size(), 1u) << events.dump();
  EXPECT_EQ(events[0]["id"], *id);
  Json event = data("GET", "/api/v1/events/" + std::to_string(*id), nullptr, 200);
  EXPECT_EQ(event["payload"], Json({{"tag", "evt"}}));
  EXPECT_EQ(event.dump().find(token_), std::string::npos) << "api_token stored: " << event.dump();

  Json execs = terminal_executions("replay_ev.rule", 1);
  ASSERT_EQ(execs.size(), 1u) << execs.dump();
  EXPECT_EQ(execs[0]["status"], "completed");
  EXPECT_EQ(items("/api/v1/enforcements?rule_ref=replay_ev.rule").size(), 1u);
}

TEST_F(IngressReplayTest, DistinctRecordsAndHttpWebhooksGetDistinctEvents) {
  const std::string key = flow("replay_many");
  int64_t o1 = -1, o2 = -1;
  produce(topics::kWebhooks, key, R"({"payload":{"tag":"a"}})", {}, &o1);
  const auto tp = produce(topics::kWebhooks, key, R"({"payload":{"tag":"b"}})", {}, &o2);
  settle(tp, o2);
  // HTTP webhooks keep minted ids: the same body twice is two events.
  rest::HttpRequest req;
  req.method = "POST";
  req.path = "/api/v1/webhooks/" + key;
  req.body = R"({"payload":{"tag":"http"}})";
  auto a = router_.dispatch(req).resolve();
  auto b = router_.dispatch(req).resolve();
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  const int64_t ida = Json::parse(a.body)["data"]["event_id"];
  const int64_t idb = Json::parse(b.body)["data"]["event_id"];
  EXPECT_NE(ida, idb);
  EXPECT_LT(ida, kNaturalIdBit);  // minted, not derived

  Json execs = terminal_executions("replay_many.rule", 4);
  EXPECT_EQ(execs.size(), 4u) << execs.dump();
  EXPECT_EQ(items("/api/v1/events?trigger_ref=replay_many.hook").size(), 4u);
  EXPECT_EQ(items("/api/v1/enforcements?rule_ref=replay_many.rule").size(), 4u);
}

TEST(IngressEventIdTest, DerivedFromTopicPartitionOffset) {
  const auto a = ingress_event_id(IngressSource::kWebhooks, 0, 0);
  const auto b = ingress_event_id(IngressSource::kEvents, 0, 0);
  const auto c = ingress_event_id(IngressSource::kWebhooks, 1, 0);
  const auto d = ingress_event_id(IngressSource::kWebhooks, 0, 1);
  ASSERT_TRUE(a && b && c && d);
  EXPECT_EQ(*a, *ingress_event_id(IngressSource::kWebhooks, 0, 0));
  EXPECT_NE(*a, *b);
  EXPECT_NE(*a, *c);
  EXPECT_NE(*a, *d);
  EXPECT_NE(*b, *c);
  const auto max = ingress_event_id(IngressSource::kEvents, kMaxIngressPartitions - 1,
                                    kMaxIngressOffset);
  ASSERT_TRUE(max);
  EXPECT_LE(*max, kMaxId);
  EXPECT_GE(*a, kNaturalIdBit | kIngressIdBit);
  EXPECT_FALSE(ingress_event_id(IngressSource::kWebhooks, kMaxIngressPartitions, 0));
  EXPECT_FALSE(ingress_event_id(IngressSource::kWebhooks, -1, 0));
  EXPECT_FALSE(ingress_event_id(IngressSource::kWebhooks, 0, kMaxIngressOffset + 1));
  EXPECT_FALSE(ingress_event_id(IngressSource::kWebhooks, 0, -1));
}

}  // namespace
}  // namespace attune::service
