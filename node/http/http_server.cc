#include "node/http/http_server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace replog::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;

constexpr std::string_view kEventsPath = "/api/events";

class WsSession;

// What every session shares; the lists and `last_status` are touched on the server's thread only.
struct Shared {
  Shared(HttpRoutes& r, HttpServerOptions o, std::function<void(int, const std::string&)> l)
      : routes(r), options(std::move(o)), policy{options.bind, 0, options.token, options.csrf}, log(std::move(l)) {}

  HttpRoutes& routes;
  HttpServerOptions options;
  AccessPolicy policy;
  std::function<void(int, const std::string&)> log;
  std::atomic<uint64_t> connections{0}, ws_clients{0}, ws_dropped{0}, pending_events{0};
  std::atomic<bool> overflow_posted{false};
  mutable std::mutex codes_mu;
  std::map<int, uint64_t> codes;  // guarded by codes_mu
  std::vector<std::weak_ptr<WsSession>> clients;
  std::string last_status;

  void count(int code) {
    std::lock_guard<std::mutex> l(codes_mu);
    ++codes[code];
  }
};

// Held by each session: counts it among the open connections while it lives.
struct ConnectionSlot {
  explicit ConnectionSlot(Shared& s) : shared(s) { ++shared.connections; }
  ~ConnectionSlot() { --shared.connections; }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  Shared& shared;
};

RequestHead head_of(const bhttp::request<bhttp::string_body>& req) {
  RequestHead h;
  h.method = std::string(req.method_string());
  h.target = std::string(req.target());
  h.host = std::string(req[bhttp::field::host]);
  auto origin = req.find(bhttp::field::origin);
  h.has_origin = origin != req.end();
  if (h.has_origin) h.origin = std::string(origin->value());
  h.authorization = std::string(req[bhttp::field::authorization]);
  h.cookie = std::string(req[bhttp::field::cookie]);
  h.csrf = std::string(req["X-Replog-CSRF"]);
  return h;
}

void secure_headers(bhttp::response<bhttp::string_body>& res, const std::string& host) {
  res.set(bhttp::field::server, "replog");
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Content-Security-Policy",
          "default-src 'self'; connect-src 'self' ws://" + host + "; img-src 'self' data:; frame-ancestors 'none'");
}

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket socket, Shared& shared) : ws_(std::move(socket)), shared_(shared), slot_(shared) {}
  ~WsSession() {
    if (accepted_) --shared_.ws_clients;
  }

  void run(bhttp::request<bhttp::string_body> req) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(4096);  // a client has nothing to say on this stream
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

  // On the server's thread.
  void send(std::shared_ptr<const std::string> message) {
    if (closed_) return;
    if (queue_.size() >= shared_.options.websocket_queue ||
        queued_bytes_ + message->size() > shared_.options.websocket_queue_bytes) {
      ++shared_.ws_dropped;
      shared_.log(1, "dashboard: a WebSocket client fell " + std::to_string(queue_.size()) + " messages (" +
                         std::to_string(queued_bytes_) + " bytes) behind: dropped");
      close();
      return;
    }
    queued_bytes_ += message->size();
    queue_.push_back(std::move(message));
    if (queue_.size() == 1) write_next();
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    accepted_ = true;
    ++shared_.ws_clients;
    shared_.clients.push_back(weak_from_this());
    send(std::make_shared<const std::string>(R"({"type":"hello","version":1})"));
    read_next();
  }

  void read_next() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->closed_ = true;
        return;
      }
      self->in_.consume(self->in_.size());
      self->read_next();
    });
  }

  void write_next() {
    ws_.text(true);
    ws_.async_write(asio::buffer(*queue_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->close();
        return;
      }
      self->queued_bytes_ -= self->queue_.front()->size();
      self->queue_.pop_front();
      if (!self->queue_.empty() && !self->closed_) self->write_next();
    });
  }

  void close() {
    closed_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  websocket::stream<beast::tcp_stream> ws_;
  Shared& shared_;
  ConnectionSlot slot_;
  beast::flat_buffer in_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  size_t queued_bytes_ = 0;  // of the messages in queue_
  bool accepted_ = false, closed_ = false;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, Shared& shared) : stream_(std::move(socket)), shared_(shared), slot_(shared) {}

  void read_next() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(shared_.options.max_header_bytes));
    parser_->body_limit(shared_.options.max_body_bytes);
    stream_.expires_after(std::chrono::milliseconds(shared_.options.request_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      return close();
    if (ec == bhttp::error::body_limit) return answer(json_error(413, "the request body is over its limit"), false, "");
    if (ec == bhttp::error::header_limit) return answer(json_error(431, "the request's header is over its limit"), false, "");
    if (ec) return answer(json_error(400, "malformed HTTP request: " + ec.message()), false, "");
    bhttp::request<bhttp::string_body> req = parser_->release();
    RequestHead head = head_of(req);
    if (auto refused = check_access(head, shared_.policy)) {
      shared_.log(3, "dashboard: refused " + head.method + " " + std::string(target_path(head.target)) + ": " + refused->message);
      return answer(json_error(refused->status, refused->message), false, "");  // a refused Host is not echoed
    }
    if (websocket::is_upgrade(req)) {
      if (target_path(head.target) != kEventsPath)
        return answer(json_error(404, "WebSocket is served at /api/events only"), false, head.host);
      shared_.count(101);
      stream_.expires_never();
      std::make_shared<WsSession>(stream_.release_socket(), shared_)->run(std::move(req));
      return;
    }
    HttpResponse res;
    try {
      res = shared_.routes.handle(HttpRequest{head, std::move(req.body())});
    } catch (const std::exception& e) {  // nothing a request holds may stop the server
      res = json_error(500, std::string("the request could not be answered: ") + e.what());
    }
    if (!shared_.policy.token.empty() && query_value(head.target, "token"))
      res.headers.emplace_back("Set-Cookie", "replog_token=" + shared_.policy.token + "; Path=/; HttpOnly; SameSite=Strict");
    answer(std::move(res), req.keep_alive(), head.host);
  }

  void answer(HttpResponse r, bool keep_alive, const std::string& host) {
    shared_.count(r.status);
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(r.status), 11);
    res->set(bhttp::field::content_type, r.content_type);
    secure_headers(*res, host);
    for (auto& [name, value] : r.headers) res->set(name, value);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(shared_.options.request_timeout_ms));
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
      if (ec || !keep_alive) return self->close();
      self->read_next();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Shared& shared_;
  ConnectionSlot slot_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(HttpRoutes& routes, HttpServerOptions options, std::function<void(int, const std::string&)> log)
      : shared(routes, std::move(options), std::move(log)),
        acceptor(ioc),
        ticker(ioc) {}

  void accept_next() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (shared.connections.load() >= shared.options.max_connections) {
          beast::error_code ignored;
          socket.close(ignored);  // at the limit: closed at once, never queued
        } else {
          std::make_shared<HttpSession>(std::move(socket), shared)->read_next();
        }
      }
      accept_next();
    });
  }

  void broadcast(const std::shared_ptr<const std::string>& message) {
    auto& clients = shared.clients;
    for (size_t i = 0; i < clients.size();) {
      if (auto c = clients[i].lock()) {
        c->send(message);
        ++i;
      } else {
        clients[i] = std::move(clients.back());
        clients.pop_back();
      }
    }
  }

  // Status and peers, sent when they changed since the last tick.
  void tick() {
    ticker.expires_after(std::chrono::milliseconds(shared.options.status_interval_ms));
    ticker.async_wait([this](beast::error_code ec) {
      if (ec) return;
      try {
        if (shared.ws_clients.load() > 0) {
          std::string now = R"({"type":"status","status":)" + shared.routes.status_json() +
                            R"(,"peers":)" + shared.routes.peers_json() + "}";
          if (now != shared.last_status) {
            shared.last_status = now;
            broadcast(std::make_shared<const std::string>(std::move(now)));
          }
        }
      } catch (const std::exception& e) {  // one bad status must not stop the stream for good
        shared.log(1, std::string("dashboard: status stream: ") + e.what());
      }
      tick();
    });
  }

  Shared shared;  // before ioc: the sessions that ioc's handlers hold use it until ioc is gone
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
  asio::steady_timer ticker;
  std::thread thread;
  uint16_t port = 0;
  bool started = false;
};

HttpServer::HttpServer(HttpRoutes& routes, HttpServerOptions options, std::function<void(int, const std::string&)> log)
    : impl_(std::make_unique<Impl>(routes, std::move(options), std::move(log))) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  Impl& m = *impl_;
  const HttpBind& bind = m.shared.options.bind;
  beast::error_code ec;
  auto address = asio::ip::make_address(bind.host == "localhost" ? "127.0.0.1" : bind.host, ec);
  if (ec) return Status::invalid_argument("--http " + bind.host + ": " + ec.message());
  tcp::endpoint endpoint(address, bind.port);
  const std::string where = "--http " + bind.authority(bind.port);
  if (m.acceptor.open(endpoint.protocol(), ec)) return Status::io_error(where + ": " + ec.message());
  if (m.acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return Status::io_error(where + ": " + ec.message());
  if (m.acceptor.bind(endpoint, ec)) return Status::io_error(where + ": " + ec.message());
  if (m.acceptor.listen(asio::socket_base::max_listen_connections, ec)) return Status::io_error(where + ": " + ec.message());
  m.port = m.acceptor.local_endpoint().port();
  m.shared.policy.port = m.port;
  m.accept_next();
  m.tick();
  m.started = true;
  m.thread = std::thread([&m] {
    // A handler's exception must not end the server: log it and go on.
    while (true) {
      try {
        m.ioc.run();
        return;
      } catch (const std::exception& e) {
        m.shared.log(0, std::string("dashboard: ") + e.what());
      }
    }
  });
  return Status::ok();
}

void HttpServer::stop() {
  Impl& m = *impl_;
  if (!m.started) return;
  m.started = false;
  m.ioc.stop();
  if (m.thread.joinable()) m.thread.join();
}

uint16_t HttpServer::port() const { return impl_->port; }

std::string HttpServer::url() const {
  const HttpBind& bind = impl_->shared.options.bind;
  HttpBind shown = bind;
  if (bind.host == "0.0.0.0") shown.host = "127.0.0.1";
  if (bind.host == "::") shown.host = "::1";
  std::string url = "http://" + shown.authority(impl_->port) + "/";
  if (!impl_->shared.options.token.empty()) url += "?token=" + impl_->shared.options.token;
  return url;
}

void HttpServer::on_committed(const std::vector<Update>& updates) {
  Impl& m = *impl_;
  m.shared.routes.count_applied(updates);
  if (m.shared.ws_clients.load() == 0 || updates.empty()) return;
  if (m.shared.pending_events.load() + updates.size() > m.shared.options.max_pending_events) {
    // The server's thread is that far behind: clients hear of the gap and read afresh.
    if (!m.shared.overflow_posted.exchange(true))
      asio::post(m.ioc, [&m] {
        m.shared.overflow_posted = false;
        m.broadcast(std::make_shared<const std::string>(R"({"type":"overflow"})"));
      });
    return;
  }
  m.shared.pending_events += updates.size();
  asio::post(m.ioc, [&m, updates] {
    m.shared.pending_events -= updates.size();
    for (const auto& u : updates)
      m.broadcast(std::make_shared<const std::string>(R"({"type":"update","update":)" + update_json(u) + "}"));
  });
}

void HttpServer::fill_metrics(MetricsInput& in) const {
  const Shared& s = impl_->shared;
  in.http_connections = s.connections.load();
  in.websocket_clients = s.ws_clients.load();
  in.websocket_dropped = s.ws_dropped.load();
  std::lock_guard<std::mutex> l(s.codes_mu);
  in.http_responses = s.codes;
}

}  // namespace replog::http
