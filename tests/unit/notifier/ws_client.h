// A minimal blocking WebSocket/HTTP client over a raw socket for notifier tests: full control of
// the upgrade headers and visibility of the raw response, close codes and backlog behaviour.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/core/record.h"

namespace attune::notifier::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct Frame {
  int opcode = 0;  // 1 text, 2 binary, 8 close, 9 ping, 10 pong
  std::string payload;
  int close_code() const {
    if (opcode != 8 || payload.size() < 2) return 0;
    return (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]);
  }
  std::string close_reason() const { return payload.size() > 2 ? payload.substr(2) : ""; }
};

// One TCP connection to 127.0.0.1. Reads block with a deadline (no sleeps); all failures are
// reported through return values so tests can assert on them.
class WsClient {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kTimeout{5000};

  ~WsClient() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Opens a TCP connection; `rcvbuf` > 0 shrinks the receive buffer (for slow-consumer tests).
  static std::unique_ptr<WsClient> open(uint16_t port, int rcvbuf = 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return nullptr;
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    const int one = 1;  // back-to-back small frames must not wait for delayed ACKs
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return nullptr;
    }
    auto c = std::unique_ptr<WsClient>(new WsClient());
    c->fd_ = fd;
    return c;
  }

  // Sends a WebSocket upgrade for `path` with the extra header lines and reads the response head
  // (plus the body for non-101 answers).
  std::optional<HttpResponse> upgrade(const std::vector<std::string>& headers,
                                      const std::string& path = "/ws") {
    std::string req = "GET " + path +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n";
    for (const std::string& h : headers) req += h + "\r\n";
    req += "\r\n";
    if (!write_all(req)) return std::nullopt;
    return read_response();
  }

  // Sends a plain HTTP request and reads the response.
  std::optional<HttpResponse> http_get(const std::string& path) {
    if (!write_all("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) return std::nullopt;
    return read_response();
  }

  bool send_text(std::string_view text) { return send_frame(0x1, text); }
  bool send_binary(std::string_view data) { return send_frame(0x2, data); }

  // Next frame, or nullopt on timeout/EOF.
  std::optional<Frame> read_frame(std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = Clock::now() + timeout;
    if (!fill(2, deadline)) return std::nullopt;
    const uint8_t b0 = buf_[0];
    const uint8_t b1 = buf_[1];
    size_t header = 2;
    uint64_t len = b1 & 0x7f;
    if (len == 126) {
      header = 4;
      if (!fill(header, deadline)) return std::nullopt;
      len = (uint64_t{static_cast<uint8_t>(buf_[2])} << 8) | static_cast<uint8_t>(buf_[3]);
    } else if (len == 127) {
      header = 10;
      if (!fill(header, deadline)) return std::nullopt;
      len = 0;
      for (int i = 2; i < 10; ++i) len = (len << 8) | static_cast<uint8_t>(buf_[i]);
    }
    if (!fill(header + len, deadline)) return std::nullopt;
    Frame f;
    f.opcode = b0 & 0x0f;
    f.payload = buf_.substr(header, len);
    buf_.erase(0, header + len);
    return f;
  }

  // Next text frame parsed as JSON; null Json on timeout/EOF or a non-text frame.
  Json read_json(std::chrono::milliseconds timeout = kTimeout) {
    std::optional<Frame> f = read_frame(timeout);
    if (!f || f->opcode != 1) return Json();
    return Json::parse(f->payload, nullptr, false);
  }

  // True once the server has closed the TCP connection (EOF or reset) before the deadline;
  // frames arriving meanwhile are discarded.
  bool wait_closed(std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      buf_.clear();
      const int r = read_some(deadline);
      if (r == 0) return true;  // EOF or error
      if (r < 0) return false;  // timeout
    }
  }

 private:
  WsClient() = default;

  bool write_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  bool send_frame(uint8_t opcode, std::string_view payload) {
    std::string f;
    f.push_back(static_cast<char>(0x80 | opcode));
    if (payload.size() < 126) {
      f.push_back(static_cast<char>(0x80 | payload.size()));
    } else if (payload.size() <= 0xffff) {
      f.push_back(static_cast<char>(0x80 | 126));
      f.push_back(static_cast<char>(payload.size() >> 8));
      f.push_back(static_cast<char>(payload.size() & 0xff));
    } else {
      f.push_back(static_cast<char>(0x80 | 127));
      for (int i = 7; i >= 0; --i)
        f.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
    }
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    f.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < payload.size(); ++i) {
      f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    }
    return write_all(f);
  }

  // Reads once into buf_: >0 bytes read, 0 on EOF/error, -1 on deadline.
  int read_some(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return -1;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready == 0) return -1;
    if (ready < 0) return 0;
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return 0;
    buf_.append(chunk, static_cast<size_t>(n));
    return static_cast<int>(n);
  }

  bool fill(size_t want, Clock::time_point deadline) {
    while (buf_.size() < want) {
      if (read_some(deadline) <= 0) return false;
    }
    return true;
  }

  std::optional<HttpResponse> read_response() {
    const auto deadline = Clock::now() + kTimeout;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (read_some(deadline) <= 0) return std::nullopt;
    }
    HttpResponse r;
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    const size_t sp = status_line.find(' ');
    if (sp == std::string::npos) return std::nullopt;
    r.status = std::atoi(status_line.c_str() + sp + 1);
    while (line_end != std::string::npos) {
      const size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line =
          head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    if (r.status != 101) {
      const auto cl = r.headers.find("content-length");
      const size_t len = cl == r.headers.end() ? 0 : std::stoul(cl->second);
      if (!fill(len, deadline)) return std::nullopt;
      r.body = buf_.substr(0, len);
      buf_.erase(0, len);
    }
    return r;
  }

  int fd_ = -1;
  std::string buf_;  // bytes received but not yet consumed
};

}  // namespace attune::notifier::testing
