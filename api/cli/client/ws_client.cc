// websocketpp + standalone asio client behind ws_client.h. C++17 target (see CMakeLists.txt).
#include "api/cli/client/ws_client.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

namespace attune::cli::client {
namespace {

using WsppClient = websocketpp::client<websocketpp::config::asio_client>;

class NotifierConnectionImpl final : public NotifierConnection {
 public:
  NotifierConnectionImpl() {
    client_.clear_access_channels(websocketpp::log::alevel::all);
    client_.clear_error_channels(websocketpp::log::elevel::all);
  }

  ~NotifierConnectionImpl() override {
    if (!thread_.joinable()) return;
    client_.get_io_service().post([this] {
      if (is_open()) {
        websocketpp::lib::error_code ec;
        client_.close(hdl_, websocketpp::close::status::normal, "bye", ec);
      }
    });
    // A clean close needs one round trip; do not wait for a slow server.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(300), [this] { return closed_; });
    lock.unlock();
    client_.stop();
    if (thread_.joinable()) thread_.join();
  }

  bool start(const std::string& url, const std::string& token, std::chrono::milliseconds timeout,
             std::string* error) {
    websocketpp::lib::error_code ec;
    client_.init_asio(ec);
    if (ec) {
      *error = ec.message();
      return false;
    }
    client_.set_open_handshake_timeout(static_cast<long>(timeout.count()));
    client_.set_open_handler([this](websocketpp::connection_hdl) {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
      cv_.notify_all();
    });
    client_.set_fail_handler([this](websocketpp::connection_hdl h) {
      std::string why = "connection failed";
      websocketpp::lib::error_code ec2;
      auto con = client_.get_con_from_hdl(h, ec2);
      if (!ec2) {
        const int status = static_cast<int>(con->get_response_code());
        why = status != 0 ? "upgrade refused with HTTP " + std::to_string(status)
                          : con->get_ec().message();
      }
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      reason_ = why;
      cv_.notify_all();
    });
    client_.set_close_handler([this](websocketpp::connection_hdl h) {
      std::string why = "closed";
      websocketpp::lib::error_code ec2;
      auto con = client_.get_con_from_hdl(h, ec2);
      if (!ec2) {
        why = "closed with code " + std::to_string(con->get_remote_close_code()) + " " +
              con->get_remote_close_reason();
      }
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      reason_ = why;
      cv_.notify_all();
    });
    client_.set_message_handler([this](websocketpp::connection_hdl, WsppClient::message_ptr msg) {
      std::lock_guard<std::mutex> lock(mu_);
      frames_.push_back(msg->get_payload());
      cv_.notify_all();
    });
    auto con = client_.get_connection(url, ec);
    if (ec) {
      *error = "bad WebSocket URL " + url + ": " + ec.message();
      return false;
    }
    con->append_header("Authorization", "Bearer " + token);
    hdl_ = con->get_handle();
    client_.connect(con);
    thread_ = std::thread([this] {
      try {
        client_.run();
      } catch (const std::exception&) {  // asio may throw on resource exhaustion
      }
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      cv_.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout + std::chrono::milliseconds(500),
                 [this] { return open_ || closed_; });
    if (open_ && !closed_) return true;
    *error = closed_ ? reason_ : "timed out connecting";
    return false;
  }

  WsEvent next(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return !frames_.empty() || closed_; });
    if (!frames_.empty()) {
      WsEvent ev{WsEvent::Kind::kMessage, std::move(frames_.front())};
      frames_.pop_front();
      return ev;
    }
    if (closed_) return WsEvent{WsEvent::Kind::kClosed, reason_};
    return WsEvent{WsEvent::Kind::kTimeout, {}};
  }

  bool send(const std::string& text) override {
    if (!is_open()) return false;
    client_.get_io_service().post([this, text] {
      websocketpp::lib::error_code ec;
      client_.send(hdl_, text, websocketpp::frame::opcode::text, ec);
    });
    return true;
  }

 private:
  bool is_open() {
    std::lock_guard<std::mutex> lock(mu_);
    return open_ && !closed_;
  }

  WsppClient client_;
  websocketpp::connection_hdl hdl_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> frames_;
  bool open_ = false;
  bool closed_ = false;
  std::string reason_;
};

}  // namespace

std::unique_ptr<NotifierConnection> connect_notifier(const std::string& url,
                                                     const std::string& token,
                                                     std::chrono::milliseconds timeout,
                                                     std::string* error) {
  auto conn = std::make_unique<NotifierConnectionImpl>();
  if (!conn->start(url, token, timeout, error)) return nullptr;
  return conn;
}

}  // namespace attune::cli::client
