#include "topology/kafka_mock.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

namespace attune {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int16_t kProduce = 0;
constexpr int16_t kFetch = 1;

// Big-endian reads over one Kafka frame; ok() turns false on any overrun (never throws).
class Reader {
 public:
  Reader(const char* p, size_t n) : begin_(p), p_(p), end_(p + n) {}
  int64_t num(size_t width) {
    const char* at = p_;
    if (!take(width)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) v = (v << 8) | static_cast<uint8_t>(at[i]);
    if (width == 2) return static_cast<int16_t>(v);
    if (width == 4) return static_cast<int32_t>(v);
    return static_cast<int64_t>(v);
  }
  int16_t i16() { return static_cast<int16_t>(num(2)); }
  int32_t i32() { return static_cast<int32_t>(num(4)); }
  int64_t i64() { return num(8); }
  std::string str() {  // INT16 length, -1 for null
    const int16_t n = i16();
    if (n <= 0 || !take(static_cast<size_t>(n))) return {};
    return std::string(p_ - n, static_cast<size_t>(n));
  }
  void skip(int64_t n) {
    if (n > 0) take(static_cast<size_t>(n));
  }
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  bool ok() const { return ok_; }

 private:
  bool take(size_t n) {
    if (!ok_ || static_cast<size_t>(end_ - p_) < n) {
      ok_ = false;
      return false;
    }
    p_ += n;
    return true;
  }
  const char* begin_;
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

using PartitionKey = std::pair<std::string, int32_t>;

// Skips a request header v1 (api key, version, correlation id, client id); Produce up to v8 and
// Fetch up to v11 are not flexible versions, so no tagged fields follow.
void skip_request_header(Reader& r) {
  r.skip(8);
  r.str();
}

// Fetch v4..v11: the offset of MaxWaitMs in the frame (after the 4-byte length) and the
// partitions asked for; nullopt when the request cannot be read.
struct FetchRequest {
  size_t max_wait_offset = 0;
  int32_t max_wait_ms = 0;
  std::vector<PartitionKey> parts;
};
std::optional<FetchRequest> parse_fetch(const char* p, size_t n, int16_t version) {
  Reader r(p, n);
  skip_request_header(r);
  FetchRequest f;
  r.skip(4);  // ReplicaId
  f.max_wait_offset = r.offset();
  f.max_wait_ms = r.i32();
  r.skip(4 + 4 + 1);  // MinBytes, MaxBytes (v3+), IsolationLevel (v4+)
  if (version >= 7) r.skip(8);  // SessionId, SessionEpoch
  const int32_t topics = r.i32();
  for (int32_t t = 0; t < topics && r.ok(); ++t) {
    std::string name = r.str();
    const int32_t parts = r.i32();
    for (int32_t i = 0; i < parts && r.ok(); ++i) {
      f.parts.emplace_back(name, r.i32());
      if (version >= 9) r.skip(4);  // CurrentLeaderEpoch
      r.skip(8);                    // FetchOffset
      if (version >= 5) r.skip(8);  // LogStartOffset
      r.skip(4);                    // PartitionMaxBytes
    }
  }
  if (!r.ok()) return std::nullopt;
  return f;
}

// Produce v3..v8: the partitions it appends to; nullopt when unreadable or acks=0 (no response).
std::optional<std::vector<PartitionKey>> parse_produce(const char* p, size_t n) {
  Reader r(p, n);
  skip_request_header(r);
  r.str();  // TransactionalId
  const int16_t acks = r.i16();
  r.skip(4);  // TimeoutMs
  std::vector<PartitionKey> out;
  const int32_t topics = r.i32();
  for (int32_t t = 0; t < topics && r.ok(); ++t) {
    std::string name = r.str();
    const int32_t parts = r.i32();
    for (int32_t i = 0; i < parts && r.ok(); ++i) {
      out.emplace_back(name, r.i32());
      r.skip(r.i32());  // Records
    }
  }
  if (!r.ok() || acks == 0) return std::nullopt;
  return out;
}

// Fetch v4..v11 response (after the correlation id): true when it carries records or any error
// (either must reach the client now); unreadable counts as worth delivering.
bool fetch_response_has_news(const char* p, size_t n, int16_t version) {
  Reader r(p, n);
  r.skip(4);  // CorrelationId
  r.skip(4);  // ThrottleTimeMs
  if (version >= 7) {
    if (r.i16() != 0) return true;
    r.skip(4);  // SessionId
  }
  const int32_t topics = r.i32();
  for (int32_t t = 0; t < topics && r.ok(); ++t) {
    r.str();
    const int32_t parts = r.i32();
    for (int32_t i = 0; i < parts && r.ok(); ++i) {
      r.skip(4);  // PartitionIndex
      if (r.i16() != 0) return true;
      r.skip(8 + 8);                // HighWatermark, LastStableOffset
      if (version >= 5) r.skip(8);  // LogStartOffset
      const int32_t aborted = r.i32();
      if (aborted > 0) r.skip(int64_t{aborted} * 16);
      if (version >= 11) r.skip(4);  // PreferredReadReplica
      const int32_t records = r.i32();
      if (records > 0) return true;
    }
  }
  return !r.ok();
}

int32_t frame_correlation(const std::string& frame, size_t at) {
  Reader r(frame.data() + at, frame.size() - at);
  return r.i32();
}

void set_nodelay_nonblocking(int fd) {
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

uint16_t local_port(int fd) {
  sockaddr_in sin{};
  socklen_t len = sizeof(sin);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0 || sin.sin_family != AF_INET) {
    return 0;
  }
  return ntohs(sin.sin_port);
}

// The listening socket of this process bound to 127.0.0.1:`port`, or -1.
int find_listener(uint16_t port) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  const int self_fd = dirfd(dir);
  while (dirent* e = readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == self_fd) continue;
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_in sin{};
    socklen_t slen = sizeof(sin);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &slen) != 0) continue;
    if (sin.sin_family == AF_INET && ntohs(sin.sin_port) == port &&
        sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

// The brokers' addresses of a bootstrap list ("host:port,...") with the mock's listening socket
// of each (-1 when not found).
std::vector<std::pair<std::string, int>> broker_listeners(const std::string& bootstraps) {
  std::vector<std::pair<std::string, int>> out;
  size_t from = 0;
  while (from < bootstraps.size()) {
    size_t to = bootstraps.find(',', from);
    if (to == std::string::npos) to = bootstraps.size();
    std::string addr = bootstraps.substr(from, to - from);
    from = to + 1;
    const auto colon = addr.rfind(':');
    const int port = colon == std::string::npos ? 0 : std::atoi(addr.c_str() + colon + 1);
    const int fd = port > 0 ? find_listener(static_cast<uint16_t>(port)) : -1;
    out.emplace_back(std::move(addr), fd);
  }
  return out;
}

}  // namespace

// The long-poll front of the mock brokers. librdkafka's mock answers a Fetch that finds no data
// only after the request's MaxWaitMs, even when a producer appends meanwhile (its source says
// so), where a real broker answers as soon as data arrives. So every hop of a record through
// the mock costs up to fetch.wait.max.ms, which hides what the clients themselves cost.
//
// This proxy sits on each broker's advertised address (the mock keeps listening on a private
// port behind it: the advertised listener socket is taken over, so metadata needs no rewriting)
// and gives Fetch the broker's semantics: it forwards a Fetch with MaxWaitMs 0, holds an empty
// answer, asks again as soon as a Produce to one of the fetched partitions has been answered,
// and hands the client the first answer with records (or an error), or the last empty one once
// the client's MaxWaitMs has passed. Responses go back in request order per connection, as
// Kafka does. Only Fetch v4..v11 and Produce v3..v8 are read (what the mock speaks); anything
// else passes through untouched.
//
// Thread-safety: one thread owns every socket and all state; stop() from any thread.
class MockKafkaCluster::LongPoll {
 public:
  struct Listener {
    int advertised = -1;      // taken over from the mock
    uint16_t private_port = 0;  // where the mock listens now
  };

  explicit LongPoll(std::vector<Listener> listeners) : listeners_(std::move(listeners)) {
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
    thread_ = std::thread([this] { run(); });
  }

  ~LongPoll() {
    stopping_.store(true);
    if (wake_[1] >= 0) {
      const char b = 1;
      [[maybe_unused]] auto n = write(wake_[1], &b, 1);
    }
    if (thread_.joinable()) thread_.join();
    for (auto& c : conns_) close_conn(*c);
    for (auto& l : listeners_) close(l.advertised);
    if (wake_[0] >= 0) close(wake_[0]);
    if (wake_[1] >= 0) close(wake_[1]);
  }

 private:
  struct Slot {  // a response owed to the client, in request order
    int32_t corr = 0;
    int16_t api_key = -1;
    int16_t version = 0;
    bool done = false;
    std::string response;  // the frame, with its length prefix
    // A long-polled Fetch:
    bool held = false;
    std::string request;  // the frame with MaxWaitMs 0, asked again on news
    std::vector<PartitionKey> parts;
    SteadyClock::time_point deadline{};
    bool in_flight = false;  // a copy of `request` is at the mock
    bool dirty = false;      // a Produce was answered meanwhile: ask again
    // A Produce: the partitions whose fetchers to wake once it is answered.
    std::vector<PartitionKey> produced;
  };
  struct Conn {
    int client = -1;
    int up = -1;  // to the mock's private port
    std::string client_in, client_out, up_in, up_out;
    std::deque<std::unique_ptr<Slot>> slots;
    std::unordered_map<int32_t, Slot*> by_corr;
    bool dead = false;
  };

  void run() {
    std::vector<pollfd> fds;
    while (!stopping_.load()) {
      fds.clear();
      fds.push_back({wake_[0], POLLIN, 0});
      for (const auto& l : listeners_) fds.push_back({l.advertised, POLLIN, 0});
      for (const auto& c : conns_) {
        fds.push_back({c->client, static_cast<short>(POLLIN | (c->client_out.empty() ? 0 : POLLOUT)), 0});
        fds.push_back({c->up, static_cast<short>(POLLIN | (c->up_out.empty() ? 0 : POLLOUT)), 0});
      }
      const int n = ::poll(fds.data(), fds.size(), timeout_ms());
      if (n < 0 && errno != EINTR) {
        spdlog::error("mock long-poll proxy: poll: {}", std::strerror(errno));
        return;
      }
      if (stopping_.load()) return;
      size_t i = 1;
      for (const auto& l : listeners_) {
        if (fds[i++].revents & POLLIN) accept_one(l);
      }
      // conns_ may grow in accept_one: walk only the ones polled.
      const size_t polled = (fds.size() - i) / 2;
      for (size_t k = 0; k < polled; ++k, i += 2) {
        Conn& c = *conns_[k];
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) read_side(c, c.client, c.client_in);
        if (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) read_side(c, c.up, c.up_in);
        if (!c.dead) requests(c);
        if (!c.dead) responses(c);
      }
      expire();
      for (auto& c : conns_) {
        if (!c->dead) flush(*c, c->up, c->up_out);
        if (!c->dead) flush(*c, c->client, c->client_out);
      }
      std::erase_if(conns_, [this](const std::unique_ptr<Conn>& c) {
        if (!c->dead) return false;
        close_conn(*c);
        return true;
      });
    }
  }

  int timeout_ms() const {
    auto next = SteadyClock::time_point::max();
    for (const auto& c : conns_) {
      for (const auto& s : c->slots) {
        if (s->held && !s->done && !s->in_flight) next = std::min(next, s->deadline);
      }
    }
    if (next == SteadyClock::time_point::max()) return 1000;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - SteadyClock::now());
    return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1000));
  }

  void accept_one(const Listener& l) {
    const int client = accept4(l.advertised, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    const int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(l.private_port);
    // A blocking connect to the loopback: the mock's backlog takes it at once.
    if (up < 0 || connect(up, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
      spdlog::error("mock long-poll proxy: connect to the mock: {}", std::strerror(errno));
      close(client);
      if (up >= 0) close(up);
      return;
    }
    set_nodelay_nonblocking(client);
    set_nodelay_nonblocking(up);
    auto c = std::make_unique<Conn>();
    c->client = client;
    c->up = up;
    conns_.push_back(std::move(c));
  }

  static void close_conn(Conn& c) {
    if (c.client >= 0) close(c.client);
    if (c.up >= 0) close(c.up);
    c.client = c.up = -1;
  }

  static void read_side(Conn& c, int fd, std::string& in) {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof(buf)) return;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      c.dead = true;  // closed or failed: the other side is closed with it
      return;
    }
  }

  static void flush(Conn& c, int fd, std::string& out) {
    while (!out.empty()) {
      const ssize_t n = send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      c.dead = true;
      return;
    }
  }

  // Complete frames from the client: note what each one owes, forward them.
  void requests(Conn& c) {
    size_t at = 0;
    while (c.client_in.size() - at >= 4) {
      const auto len = static_cast<size_t>(frame_correlation(c.client_in, at));
      if (c.client_in.size() - at - 4 < len) break;
      const char* body = c.client_in.data() + at + 4;
      Reader h(body, len);
      const int16_t api_key = h.i16();
      const int16_t version = h.i16();
      const int32_t corr = h.i32();
      std::string frame = c.client_in.substr(at, len + 4);
      at += len + 4;
      auto slot = std::make_unique<Slot>();
      slot->corr = corr;
      slot->api_key = api_key;
      slot->version = version;
      if (api_key == kFetch && version >= 4 && version <= 11) {
        if (auto f = parse_fetch(body, len, version); f && f->max_wait_ms > 0) {
          std::memset(frame.data() + 4 + f->max_wait_offset, 0, 4);
          slot->held = true;
          slot->request = frame;
          slot->parts = std::move(f->parts);
          slot->deadline = SteadyClock::now() + std::chrono::milliseconds(f->max_wait_ms);
          slot->in_flight = true;
        }
      } else if (api_key == kProduce && version >= 3 && version <= 8) {
        auto parts = parse_produce(body, len);
        if (!parts) {  // acks=0 (no response) or unreadable: pass through untracked
          c.up_out += frame;
          continue;
        }
        slot->produced = std::move(*parts);
      }
      c.up_out += frame;
      c.by_corr[corr] = slot.get();
      c.slots.push_back(std::move(slot));
    }
    c.client_in.erase(0, at);
  }

  // Complete frames from the mock: fill their slots; release what is due, in order.
  void responses(Conn& c) {
    size_t at = 0;
    while (c.up_in.size() - at >= 4) {
      const auto len = static_cast<size_t>(frame_correlation(c.up_in, at));
      if (c.up_in.size() - at - 4 < len) break;
      const int32_t corr = frame_correlation(c.up_in, at + 4);
      std::string frame = c.up_in.substr(at, len + 4);
      at += len + 4;
      auto it = c.by_corr.find(corr);
      if (it == c.by_corr.end()) {  // not ours to track (cannot happen): pass it on
        c.client_out += frame;
        continue;
      }
      Slot& s = *it->second;
      if (s.held) {
        s.in_flight = false;
        const bool news = fetch_response_has_news(frame.data() + 4, len, s.version);
        s.response = std::move(frame);
        if (news || SteadyClock::now() >= s.deadline) {
          s.done = true;
        } else if (s.dirty) {
          ask_again(c, s);
        }
        continue;
      }
      s.response = std::move(frame);
      s.done = true;
      if (!s.produced.empty()) wake(s.produced);
    }
    c.up_in.erase(0, at);
    release(c);
  }

  void ask_again(Conn& c, Slot& s) {
    s.dirty = false;
    s.in_flight = true;
    c.up_out += s.request;
  }

  // A Produce to `parts` was answered: its records are readable now.
  void wake(const std::vector<PartitionKey>& parts) {
    for (auto& c : conns_) {
      if (c->dead) continue;
      for (auto& s : c->slots) {
        if (!s->held || s->done) continue;
        const bool hit = std::any_of(parts.begin(), parts.end(), [&](const PartitionKey& p) {
          return std::find(s->parts.begin(), s->parts.end(), p) != s->parts.end();
        });
        if (!hit) continue;
        if (s->in_flight) {
          s->dirty = true;
        } else {
          ask_again(*c, *s);
        }
      }
    }
  }

  void expire() {
    const auto now = SteadyClock::now();
    for (auto& c : conns_) {
      bool any = false;
      for (auto& s : c->slots) {
        if (s->held && !s->done && !s->in_flight && now >= s->deadline) {
          s->done = true;
          any = true;
        }
      }
      if (any) release(*c);
    }
  }

  static void release(Conn& c) {
    while (!c.slots.empty() && c.slots.front()->done) {
      Slot& s = *c.slots.front();
      c.client_out += s.response;
      c.by_corr.erase(s.corr);
      c.slots.pop_front();
    }
  }

  std::vector<Listener> listeners_;
  std::vector<std::unique_ptr<Conn>> conns_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

Result<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::start(int brokers, bool long_poll) {
  auto self = std::unique_ptr<MockKafkaCluster>(new MockKafkaCluster());
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return make_error(Errc::kInternal, std::string("mock cluster client: ") + err);
  }
  self->rk_ = rk;
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) return make_error(Errc::kInternal, "cannot start the Kafka mock cluster");
  self->cluster_ = mc;
  self->bootstraps_ = rd_kafka_mock_cluster_bootstraps(mc);
  self->disable_nagle();
  if (long_poll) {
    if (auto st = self->start_long_poll(); !st.ok()) {
      spdlog::warn("Kafka mock: no long-poll fetches ({}); empty fetches wait fetch.wait.max.ms",
                   st.error().message);
    }
  }
  return self;
}

// The mock never disables Nagle on the connections it accepts (a broker does): a response
// written while an earlier one is not yet acknowledged waits for the reader's delayed ACK,
// ~40 ms — most hops of a record through the mock paid it now and then. Accepted sockets
// inherit TCP_NODELAY from their listener.
void MockKafkaCluster::disable_nagle() {
  const int on = 1;
  for (const auto& [addr, fd] : broker_listeners(bootstraps_)) {
    if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) {
      spdlog::warn("Kafka mock: cannot disable Nagle on the listener of {}", addr);
    }
  }
}

Status MockKafkaCluster::start_long_poll() {
  // No client has connected yet: each broker's listener is swapped for a private one before
  // anyone can reach it.
  std::vector<LongPoll::Listener> listeners;
  auto undo = [&listeners] {
    for (auto& l : listeners) close(l.advertised);
  };
  for (const auto& [addr, mock_fd] : broker_listeners(bootstraps_)) {
    if (mock_fd < 0) {
      undo();
      return make_error(Errc::kInternal, "listener of " + addr + " not found");
    }
    const int priv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int on = 1;  // disable_nagle(): for the connections the mock accepts from us
    if (priv >= 0) setsockopt(priv, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (priv < 0 || bind(priv, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 ||
        listen(priv, 128) != 0) {
      if (priv >= 0) close(priv);
      undo();
      return make_error(Errc::kInternal, std::string("private listener: ") + std::strerror(errno));
    }
    LongPoll::Listener l;
    l.private_port = local_port(priv);
    l.advertised = fcntl(mock_fd, F_DUPFD_CLOEXEC, 0);
    // The mock's descriptor now names the private listener; we keep the advertised one.
    if (l.advertised < 0 || dup3(priv, mock_fd, O_CLOEXEC) < 0) {
      if (l.advertised >= 0) close(l.advertised);
      close(priv);
      undo();
      return make_error(Errc::kInternal, std::string("listener swap: ") + std::strerror(errno));
    }
    close(priv);
    listeners.push_back(l);
  }
  // The mock thread may sit in a poll() that still watches the old listener: an op wakes it so
  // that it polls the swapped descriptor from now on.
  rd_kafka_mock_broker_set_rtt(static_cast<rd_kafka_mock_cluster_t*>(cluster_), -1, 0);
  long_poll_ = std::make_unique<LongPoll>(std::move(listeners));
  return {};
}

MockKafkaCluster::MockKafkaCluster() = default;

MockKafkaCluster::~MockKafkaCluster() {
  long_poll_.reset();  // clients' connections end here, before the brokers go
  if (cluster_) rd_kafka_mock_cluster_destroy(static_cast<rd_kafka_mock_cluster_t*>(cluster_));
  if (rk_) rd_kafka_destroy(static_cast<rd_kafka_t*>(rk_));
}

Status MockKafkaCluster::create_topic(const std::string& name, int32_t partitions) {
  const auto e = rd_kafka_mock_topic_create(static_cast<rd_kafka_mock_cluster_t*>(cluster_),
                                            name.c_str(), partitions, 1);
  if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    return make_error(Errc::kInternal, "mock topic " + name + ": " + rd_kafka_err2str(e));
  }
  return {};
}

Status MockKafkaCluster::create_topics(const std::vector<TopicConfig>& topics) {
  // Each creation is a round trip to the mock's thread that waits for its next wake-up; issued
  // together they share the wait.
  std::vector<std::future<Status>> pending;
  for (const auto& t : topics) {
    pending.push_back(std::async(std::launch::async, [this, t] {
      return create_topic(t.name, t.partitions);
    }));
  }
  Status result;
  for (auto& f : pending) {
    auto st = f.get();
    if (!st.ok() && result.ok()) result = st;
  }
  return result;
}

}  // namespace attune
