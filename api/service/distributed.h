// Distributed-mode parts of the API role: GET /api/v1/workers (API.md §6, §7 Worker) and the
// Kafka ingress stage (API.md §18).
#pragma once

#include "api/rest/router.h"
#include "api/service/metrics.h"
#include "api/service/service.h"
#include "processors/monitor/workers.h"
#include "topology/topology.h"

namespace attune::service {

// GET /api/v1/workers (filters status, worker_role; paginated) and GET /api/v1/workers/{id}.
// Needs workers:read. `workers` must be started and outlive the router.
void register_worker_routes(RouteTable& table, const monitor::WorkersView& workers);

// The "attune-ingress" stage (consumer group attune-ingress): every record of attune.webhooks
// (key = webhook key, value = the body of POST /api/v1/webhooks/{key}) and attune.events.ingress
// (value = the body of POST /api/v1/events plus `api_token`, or header `authorization`) goes
// through the same route handler as its HTTP twin — same validation, limits, rate-limit
// counters, events, notifications and metrics. A refused record is counted
// (attune_kafka_ingress_records_total{topic,outcome}), logged without secrets and produced to
// attune.deadletter with its key and headers and the reason (API.md §18). The event of a
// record gets the id ingress_event_id(topic, partition, offset) (topology/core/ids.h), so
// processing a record twice yields one event. `router` must hold the API routes and outlive
// the stage.
inline constexpr std::string_view kIngressStage = "attune-ingress";
void add_ingress_stage(Topology& topology, const rest::Router& router, Metrics& metrics,
                       size_t max_body_bytes);
// The stage's processor (for add_ingress_stage and tests that run it under another stage name).
std::unique_ptr<Processor> make_ingress_processor(const rest::Router& router, Metrics& metrics,
                                                  size_t max_body_bytes);

// The API.md §18 reason_code of a refused webhook / event (exposed for tests).
std::string webhook_reason_code(int status, const std::string& message);
std::string event_reason_code(int status, const std::string& message);

}  // namespace attune::service
