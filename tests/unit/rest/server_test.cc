// HttpServer on an ephemeral port, exercised with libcurl and a raw socket.
#include "api/rest/server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <thread>

namespace attune::rest {
namespace {

constexpr size_t kMaxBody = 4096;

struct Reply {
  long status = 0;
  std::string body;
  std::multimap<std::string, std::string> headers;  // lower-cased names
  long new_connections = 0;
};

size_t collect_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t collect_header(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n") + 1);
    static_cast<std::multimap<std::string, std::string>*>(out)->emplace(name, value);
  }
  return size * n;
}

// One curl easy handle = one reusable connection, like a keep-alive client.
class Client {
 public:
  explicit Client(uint16_t port) : base_("http://127.0.0.1:" + std::to_string(port)) {
    curl_ = curl_easy_init();
  }
  ~Client() { curl_easy_cleanup(curl_); }

  Reply request(const std::string& method, const std::string& path, const std::string& body = "",
                const std::vector<std::string>& headers = {}) {
    Reply reply;
    curl_easy_reset(curl_);
    const std::string url = base_ + path;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method == "POST" || method == "PUT") {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_slist* list = nullptr;
    for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &reply.headers);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 10L);
    const CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(list);
    EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &reply.new_connections);
    return reply;
  }

 private:
  std::string base_;
  CURL* curl_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_ALL); }

  void SetUp() override {
    router_.add("GET", "/echo", [](HttpRequest& req) {
      Json query = Json::object();
      for (const auto& [k, v] : req.query) query[k] = v;
      return HttpResponse::json(200, Json{{"method", req.method},
                                          {"path", req.path},
                                          {"query", query},
                                          {"remote_ip", req.remote_ip},
                                          {"authorization", req.header("authorization")
                                                                .value_or("")},
                                          {"custom", req.header("X-Custom").value_or("")}});
    });
    router_.add("POST", "/items/{name}", [](HttpRequest& req) {
      auto body = parse_json_body(req);
      if (!body.ok()) return HttpResponse::error(body.error());
      return HttpResponse::json(
          201, Json{{"name", req.params.at("name")}, {"body", *body}, {"size", req.body.size()}});
    });
    router_.add("GET", "/limited", [](HttpRequest&) {
      HttpResponse r = HttpResponse::error(make_error(Errc::kTooManyRequests, "Rate limited"));
      r.headers.emplace_back("Retry-After", "7");
      r.headers.emplace_back("X-Attune-Test", "yes");
      return r;
    });
    router_.add("GET", "/metrics", [](HttpRequest&) {
      HttpResponse r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = "attune_http_requests_total 1\n";
      return r;
    });
    // Answered from another thread after the handler returned (like a webhook answered once its
    // log write is durable).
    router_.add("POST", "/later/{name}", [this](HttpRequest& req) {
      auto d = std::make_shared<DeferredResponse>();
      std::lock_guard lock(later_mu_);
      later_.emplace_back(std::thread([d, name = req.params.at("name")] {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        d->complete(HttpResponse::json(202, Json{{"name", name}}));
      }));
      return HttpResponse::later(d);
    });
    router_.add("GET", "/count", [this](HttpRequest&) {
      const int n = ++handled_;
      return HttpResponse::json(200, Json{{"n", n}});
    });
    ServerOptions opts;
    opts.port = 0;
    opts.max_body_bytes = kMaxBody;
    server_ = std::make_unique<HttpServer>(router_, opts);
    const Status started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
    ASSERT_NE(server_->port(), 0);
  }

  void TearDown() override {
    {
      std::lock_guard lock(later_mu_);
      for (auto& t : later_) t.join();
    }
    server_.reset();
  }

  Router router_;
  std::mutex later_mu_;
  std::vector<std::thread> later_;
  std::atomic<int> handled_{0};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, GetWithDecodedQueryHeadersAndPeer) {
  Client client(server_->port());
  const Reply r = client.request("GET", "/echo?name=a%20b&plus=x+y&twice=%2520&empty=",
                                 "", {"Authorization: Bearer abc.def.ghi", "X-Custom: hello"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.find("content-type")->second, "application/json");
  const Json b = Json::parse(r.body);
  EXPECT_EQ(b["method"], "GET");
  EXPECT_EQ(b["path"], "/echo");
  EXPECT_EQ(b["query"],
            (Json{{"name", "a b"}, {"plus", "x y"}, {"twice", "%20"}, {"empty", ""}}));
  EXPECT_EQ(b["remote_ip"], "127.0.0.1");
  EXPECT_EQ(b["authorization"], "Bearer abc.def.ghi");
  EXPECT_EQ(b["custom"], "hello");
}

TEST_F(HttpServerTest, MalformedQueryEscapeIs400) {
  Client client(server_->port());
  const Reply r = client.request("GET", "/echo?q=%zz");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Json::parse(r.body), (Json{{"error", "Malformed percent-encoding in query parameter 'q'"},
                                       {"code", "BAD_REQUEST"}}));
}

TEST_F(HttpServerTest, PostWithBodyAndEncodedPathParam) {
  Client client(server_->port());
  const Reply r = client.request("POST", "/items/my%20item", R"({"k": [1, 2]})",
                                 {"Content-Type: application/json"});
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(Json::parse(r.body)["name"], "my item");
  EXPECT_EQ(Json::parse(r.body)["body"], (Json{{"k", {1, 2}}}));

  const Reply bad = client.request("POST", "/items/x", "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Json::parse(bad.body)["code"], "BAD_REQUEST");
}

TEST_F(HttpServerTest, BodyAtLimitAcceptedOverLimitIs400Json) {
  Client client(server_->port());
  const std::string at_limit = "{\"s\":\"" + std::string(kMaxBody - 8, 'a') + "\"}";
  ASSERT_EQ(at_limit.size(), kMaxBody);
  EXPECT_EQ(client.request("POST", "/items/x", at_limit).status, 201);

  const std::string over = std::string(kMaxBody + 1000, 'x');
  const Reply r = client.request("POST", "/items/x", over);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Json::parse(r.body), (Json{{"error", "Payload too large: 5096 bytes exceeds limit 4096"},
                                       {"code", "BAD_REQUEST"}}));
}

TEST_F(HttpServerTest, CustomHeadersAndContentTypeReachTheWire) {
  Client client(server_->port());
  const Reply r = client.request("GET", "/limited");
  EXPECT_EQ(r.status, 429);
  ASSERT_EQ(r.headers.count("retry-after"), 1u);
  EXPECT_EQ(r.headers.find("retry-after")->second, "7");
  EXPECT_EQ(r.headers.find("x-attune-test")->second, "yes");
  EXPECT_EQ(Json::parse(r.body)["code"], "TOO_MANY_REQUESTS");

  const Reply m = client.request("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.headers.find("content-type")->second, "text/plain; version=0.0.4");
  EXPECT_EQ(m.body, "attune_http_requests_total 1\n");
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowedOverTheWire) {
  Client client(server_->port());
  const Reply r = client.request("GET", "/nothing/here");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Json::parse(r.body)["code"], "NOT_FOUND");
  const Reply m = client.request("DELETE", "/echo");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.headers.find("allow")->second, "GET");
}

TEST_F(HttpServerTest, CurlReusesTheConnectionWithoutAskingForKeepAlive) {
  Client client(server_->port());
  EXPECT_EQ(client.request("GET", "/count").new_connections, 1);
  EXPECT_EQ(client.request("GET", "/count").new_connections, 0);
  EXPECT_EQ(client.request("POST", "/items/a", "{}").new_connections, 0);
}

// Reads one HTTP response (head + Content-Length body) from `fd`, keeping any excess in `buf`.
std::string read_response(int fd, std::string& buf) {
  char chunk[4096];
  size_t head_end;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return "";
    buf.append(chunk, static_cast<size_t>(n));
  }
  std::string head = buf.substr(0, head_end);
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  const size_t cl = lower.find("content-length:");
  const size_t length = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15));
  while (buf.size() < head_end + 4 + length) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return "";
    buf.append(chunk, static_cast<size_t>(n));
  }
  std::string response = buf.substr(0, head_end + 4 + length);
  buf.erase(0, head_end + 4 + length);
  return response;
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneSocket) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  const std::string get = "GET /count HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
  const std::string post =
      "POST /items/z HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
  std::string buf;
  ASSERT_EQ(::send(fd, get.data(), get.size(), 0), static_cast<ssize_t>(get.size()));
  const std::string first = read_response(fd, buf);
  EXPECT_EQ(first.rfind("HTTP/1.1 200", 0), 0u) << first;
  EXPECT_NE(first.find("{\"n\":1}"), std::string::npos) << first;

  ASSERT_EQ(::send(fd, post.data(), post.size(), 0), static_cast<ssize_t>(post.size()));
  const std::string second = read_response(fd, buf);
  EXPECT_EQ(second.rfind("HTTP/1.1 201", 0), 0u) << second;
  EXPECT_NE(second.find("\"name\":\"z\""), std::string::npos) << second;

  // Connection: close is honoured: the server answers, then closes.
  const std::string closing = "GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(fd, closing.data(), closing.size(), 0), static_cast<ssize_t>(closing.size()));
  const std::string third = read_response(fd, buf);
  EXPECT_EQ(third.rfind("HTTP/1.1 200", 0), 0u) << third;
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
  ::close(fd);
}

TEST_F(HttpServerTest, ConcurrentClientsFromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Client client(server_->port());
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        const Reply r = client.request("POST", "/items/" + name, R"({"i":)" + std::to_string(i) + "}");
        if (r.status == 201 && Json::parse(r.body)["name"] == name) ++ok;
        if (client.request("GET", "/count").status == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread * 2);
  EXPECT_EQ(handled_.load(), kThreads * kPerThread);
}

TEST_F(HttpServerTest, DeferredResponsesReachTheirOwnClients) {
  constexpr int kThreads = 4, kPerThread = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Client client(server_->port());
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "d" + std::to_string(t) + "-" + std::to_string(i);
        const Reply r = client.request("POST", "/later/" + name, "{}");
        // One connection per client, kept alive across deferred answers.
        if (r.status == 202 && Json::parse(r.body)["name"] == name &&
            r.new_connections == (i == 0 ? 1 : 0)) {
          ++ok;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
}

TEST_F(HttpServerTest, PortInUseIsAClearErrorAndStopIsIdempotent) {
  ServerOptions opts;
  opts.port = server_->port();
  HttpServer second(router_, opts);
  const Status s = second.start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kUnavailable);
  EXPECT_NE(s.error().message.find("cannot listen on 127.0.0.1:" + std::to_string(opts.port)),
            std::string::npos)
      << s.error().message;

  EXPECT_EQ(server_->start().error().code, Errc::kConflict);
  server_->stop();
  EXPECT_EQ(server_->port(), 0);
  server_->stop();
}

}  // namespace
}  // namespace attune::rest
