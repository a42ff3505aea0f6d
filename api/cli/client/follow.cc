#include "api/cli/client/follow.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <thread>

#include "api/cli/client/output.h"

namespace attune::cli::client {
namespace {

std::atomic<bool> g_interrupted{false};

void on_signal(int) { g_interrupted.store(true); }

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int64_t jid(const nlohmann::json& obj, const char* key) {
  const auto& v = jget(obj, key);
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

// A one-line spinner on stderr (only when stderr is a terminal).
class Progress {
 public:
  explicit Progress(bool on) : on_(on) {}
  ~Progress() { clear(); }
  void show(const std::string& text) {
    if (!on_ || (shown_ && Clock::now() - last_ < std::chrono::milliseconds(100))) return;
    last_ = Clock::now();
    static const char* kFrames[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
    std::fprintf(stderr, "\r\033[K%s %s", kFrames[frame_++ % 10], text.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void clear() {
    if (!shown_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
  }

 private:
  bool on_;
  bool shown_ = false;
  unsigned frame_ = 0;
  Clock::time_point last_{};
};

void write_out(FILE* f, const std::string& text) {
  if (text.empty()) return;
  std::fwrite(text.data(), 1, text.size(), f);
  if (text.back() != '\n') std::fputc('\n', f);
  std::fflush(f);
}

}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_interrupted.load(); }

bool subscribe_synced(NotifierConnection& conn, const std::string& filter,
                      std::chrono::milliseconds timeout) {
  static constexpr const char* kSync = "attune-cli-sync";
  if (!conn.send(nlohmann::json{{"type", "subscribe"}, {"filter", filter}}.dump()) ||
      !conn.send(nlohmann::json{{"type", kSync}}.dump())) {
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto ev = conn.next(std::max(left, std::chrono::milliseconds(1)));
    if (ev.kind == WsEvent::Kind::kClosed) return false;
    if (ev.kind != WsEvent::Kind::kMessage) continue;
    const auto frame = nlohmann::json::parse(ev.text, nullptr, false);
    if (jstr(frame, "type") == "error" && jstr(frame, "message").find(kSync) != std::string::npos) {
      return true;
    }
  }
  return false;
}

nlohmann::json wait_for_execution(Session& s, int64_t id, const WaitOptions& options,
                                  std::unique_ptr<NotifierConnection> conn) {
  install_interrupt_handler();
  const auto start = Clock::now();
  const std::string path = "/api/v1/executions/" + std::to_string(id);
  if (!conn) {
    std::string why;
    conn = s.connect_notifier(&why);
    if (!conn && std::getenv("ATTUNE_CLI_DEBUG") != nullptr) {
      std::fprintf(stderr, "attune: notifier unavailable (%s); polling\n", why.c_str());
    }
  }
  if (conn && !subscribe_synced(*conn, "entity:execution:" + std::to_string(id),
                                std::chrono::milliseconds(3000))) {
    conn.reset();  // no confirmed subscription: poll
  }
  Progress progress(s.progress());
  std::string status;
  Clock::time_point last_poll{};
  bool polled = false;
  for (;;) {
    if (!polled || seconds_since(last_poll) >= (conn ? 2.0 : 0.5)) {
      const auto ex = s.data("GET", path);
      status = jstr(ex, "status");
      last_poll = Clock::now();
      polled = true;
      if (outcome_for_execution_status(status).terminal) return ex;
    }
    if (interrupted()) {
      progress.clear();
      throw CliError(ExitCode::kInterrupted, "interrupted; execution " + std::to_string(id) +
                                                 " is " + status + " (attune execution show " +
                                                 std::to_string(id) + ")");
    }
    if (options.timeout_seconds > 0 && seconds_since(start) >= options.timeout_seconds) {
      progress.clear();
      throw CliError(ExitCode::kWaitGaveUp,
                     "gave up waiting after " +
                         std::to_string(static_cast<int64_t>(options.timeout_seconds)) +
                         "s; execution " + std::to_string(id) + " is still " + status +
                         " (attune execution show " + std::to_string(id) + ")");
    }
    char line[160];
    std::snprintf(line, sizeof line, "execution %lld %s %.1fs", static_cast<long long>(id),
                  status.c_str(), seconds_since(start));
    progress.show(line);
    if (conn) {
      const auto ev = conn->next(std::chrono::milliseconds(200));
      if (ev.kind == WsEvent::Kind::kClosed) {
        conn.reset();  // polling from here on
      } else if (ev.kind == WsEvent::Kind::kMessage) {
        const auto frame = nlohmann::json::parse(ev.text, nullptr, false);
        if (jstr(frame, "type") == "notification" && jstr(frame, "entity_type") == "execution" &&
            jid(frame, "entity_id") == id) {
          const std::string st = jstr(jget(frame, "payload"), "status");
          if (outcome_for_execution_status(st).terminal) polled = false;  // read the result now
          if (!st.empty()) status = st;
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

int report_execution(Session& s, const nlohmann::json& ex) {
  const std::string status = jstr(ex, "status");
  const auto outcome = outcome_for_execution_status(status);
  if (s.json()) {
    Session::print_json(ex);
    return static_cast<int>(outcome.code);
  }
  const auto& result = jget(ex, "result");
  const auto& out = jget(result, "stdout");
  const auto& err = jget(result, "stderr");
  if (out.is_string() || err.is_string()) {
    if (out.is_string()) write_out(stdout, out.get<std::string>());
    if (err.is_string()) write_out(stderr, err.get<std::string>());
    const auto& data = jget(result, "data");
    if (!data.is_null() && (!out.is_string() || out.get<std::string>().empty())) {
      write_out(stdout, data.dump(2));
    }
  } else if (!result.is_null()) {
    write_out(stdout, result.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (status != "completed") {
    std::string msg = "attune: execution " + std::to_string(jid(ex, "id")) + " " + status;
    if (const std::string e = jstr(result, "error"); !e.empty()) msg += ": " + e;
    std::fprintf(stderr, "%s\n", msg.c_str());
  }
  return static_cast<int>(outcome.code);
}

std::string change_line(const std::string& time, int64_t id, const std::string& action_ref,
                        const std::string& old_status, const std::string& status, bool color) {
  std::string line = time + "  " + std::to_string(id) + "  " + action_ref + "  ";
  if (!old_status.empty()) line += styled(old_status, status_style(old_status), color) + " → ";
  line += styled(status, status_style(status), color);
  return line;
}

int follow_all_executions(Session& s, double timeout_seconds,
                          const std::function<void()>& subscribed) {
  install_interrupt_handler();
  std::string why;
  auto conn = s.connect_notifier(&why);
  if (conn && !subscribe_synced(*conn, "entity_type:execution", std::chrono::milliseconds(3000))) {
    why = "no answer to subscribe";
    conn.reset();
  }
  if (!conn) {
    std::fprintf(stderr, "attune: notifier unavailable (%s); polling every second\n", why.c_str());
  }
  if (subscribed) subscribed();
  std::map<int64_t, std::string> known;  // polling fallback: id → status
  bool primed = false;
  Clock::time_point last_poll{};
  const auto start = Clock::now();
  while (!interrupted()) {
    if (timeout_seconds > 0 && seconds_since(start) >= timeout_seconds) return 0;
    if (conn) {
      const auto ev = conn->next(std::chrono::milliseconds(200));
      if (ev.kind == WsEvent::Kind::kClosed) {
        std::fprintf(stderr, "attune: notifier connection %s; polling every second\n",
                     ev.text.c_str());
        conn.reset();
        continue;
      }
      if (ev.kind != WsEvent::Kind::kMessage) continue;
      const auto frame = nlohmann::json::parse(ev.text, nullptr, false);
      const std::string channel = jstr(frame, "notification_type");
      if (channel != "execution_created" && channel != "execution_status_changed") continue;
      const auto& p = jget(frame, "payload");
      if (s.json()) {  // one compact notification per line
        std::fprintf(stdout, "%s\n",
                     frame.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        std::fflush(stdout);
        continue;
      }
      std::string old_status = jstr(p, "old_status");
      const std::string line =
          change_line(jstr(frame, "timestamp"), jid(frame, "entity_id"), jstr(p, "action_ref"),
                      old_status, jstr(p, "status"), s.color());
      std::fprintf(stdout, "%s\n", line.c_str());
      std::fflush(stdout);
      continue;
    }
    if (primed && seconds_since(last_poll) < 1.0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    last_poll = Clock::now();
    const auto rows = s.list("/api/v1/executions", {}, 100);
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
      const int64_t id = jid(*it, "id");
      const std::string st = jstr(*it, "status");
      auto k = known.find(id);
      if (primed && (k == known.end() || k->second != st)) {
        const std::string line =
            s.json() ? it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                     : change_line(jstr(*it, "updated"), id, jstr(*it, "action_ref"),
                                   k == known.end() ? "" : k->second, st, s.color());
        std::fprintf(stdout, "%s\n", line.c_str());
        std::fflush(stdout);
      }
      known[id] = st;
    }
    primed = true;
  }
  return static_cast<int>(ExitCode::kInterrupted);
}

}  // namespace attune::cli::client
