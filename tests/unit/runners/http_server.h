// A tiny HTTP/1.1 server for runner tests: 127.0.0.1, port 0, one thread per connection,
// `Connection: close` after every answer. Routes:
//   /echo...        200 JSON {method, path, query, headers (names lower-cased), body}
//   /status/<n>     <n> with body "status <n>"
//   /redirect       302 to /echo?from=redirect
//   /big            200 with 10000 bytes of 'x'
//   /text           200 "plain words" (not JSON)
//   /hang           no answer; the handler waits until the client closes the connection
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "topology/core/record.h"

namespace attune::runners::testing {

class TestHttpServer {
 public:
  TestHttpServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TestHttpServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    std::vector<std::thread> handlers;
    {
      std::lock_guard lock(mu_);
      handlers.swap(handlers_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);  // wakes /hang handlers
    }
    for (auto& t : handlers) t.join();
  }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Waits until at least `n` requests were received (their headers read); false after `limit`.
  bool wait_for_requests(int n, std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    return seen_.wait_for(lock, limit, [&] { return requests_ >= n; });
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mu_);
      open_fds_.push_back(fd);
      handlers_.emplace_back([this, fd] { handle(fd); });
    }
  }

  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  void handle(int fd) {
    std::string in;
    char buf[4096];
    size_t header_end;
    while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return close_fd(fd);
      in.append(buf, static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(mu_);
      ++requests_;
    }
    seen_.notify_all();
    const std::string head = in.substr(0, header_end);
    std::string body = in.substr(header_end + 4);
    const size_t line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    const size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
    const std::string method = request_line.substr(0, sp1);
    const std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string path = target.substr(0, target.find('?'));
    const std::string query =
        target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
    Json headers = Json::object();
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      const std::string line = head.substr(pos, e - pos);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.erase(0, 1);
        headers[lower(line.substr(0, colon))] = v;
      }
      pos = e + 2;
    }
    const size_t length = headers.contains("content-length")
                              ? std::stoul(headers["content-length"].get<std::string>())
                              : 0;
    while (body.size() < length) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      body.append(buf, static_cast<size_t>(n));
    }

    if (path == "/hang") {
      while (::read(fd, buf, sizeof buf) > 0) {
      }
      return close_fd(fd);
    }
    int status = 200;
    std::string reason = "OK", content_type = "application/json", extra, out;
    if (path.rfind("/echo", 0) == 0) {
      out = Json{{"method", method},
                 {"path", path},
                 {"query", query},
                 {"headers", headers},
                 {"body", body}}
                .dump();
    } else if (path.rfind("/status/", 0) == 0) {
      status = std::stoi(path.substr(8));
      reason = status == 404 ? "Not Found" : status == 500 ? "Internal Server Error" : "Status";
      content_type = "text/plain";
      out = "status " + std::to_string(status);
    } else if (path == "/redirect") {
      status = 302;
      reason = "Found";
      extra = "Location: /echo?from=redirect\r\n";
    } else if (path == "/big") {
      content_type = "text/plain";
      out = std::string(10000, 'x');
    } else {
      content_type = "text/plain";
      out = "plain words";
    }
    const std::string response = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                                 "\r\nContent-Type: " + content_type +
                                 "\r\nX-Test: one\r\nX-Test: two\r\n" + extra +
                                 "Content-Length: " + std::to_string(out.size()) +
                                 "\r\nConnection: close\r\n\r\n" + (method == "HEAD" ? "" : out);
    size_t sent = 0;
    while (sent < response.size()) {
      const ssize_t n = ::write(fd, response.data() + sent, response.size() - sent);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    close_fd(fd);
  }

  void close_fd(int fd) {
    std::lock_guard lock(mu_);
    std::erase(open_fds_, fd);
    ::close(fd);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::condition_variable seen_;
  int requests_ = 0;
  std::vector<std::thread> handlers_;
  std::vector<int> open_fds_;
};

}  // namespace attune::runners::testing
