// HttpServer: the dashboard's HTTP and WebSocket server inside `replog node`
// (docs/HTTP.md), on Boost.Beast.
//
// One thread of its own runs every connection (asynchronous I/O); requests
// that pass the access checks (node/http/access.h) go to HttpRoutes, which
// reaches the node only through its thread-safe calls, so the node's event
// loop and writer never wait for a browser. A call waits on this thread for
// its commit, as a local API call does.
//
// Everything is bounded: connections (further ones are closed at once),
// request headers and bodies (413), the time a request may take to arrive,
// WebSocket messages read (the stream only sends), and each WebSocket
// client's queue of unsent messages (by count and bytes): a client that falls
// that far behind is dropped, not buffered for.
//
// Thread safety: start() and stop() from the owner's thread; on_committed()
// from any thread (the commit listener); counters() from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "node/http/access.h"
#include "node/http/metrics.h"
#include "node/http/routes.h"

namespace replog::http {

struct HttpServerOptions {
  HttpBind bind;
  std::string token;  // required on every request when not empty
  std::string csrf;   // required on every write
  size_t max_connections = 64;        // HTTP and WebSocket together
  size_t max_body_bytes = 1'200'000;  // an update's argument may be 1 MiB, in JSON a little more
  size_t max_header_bytes = 16 * 1024;
  int request_timeout_ms = 10'000;      // for a request to arrive whole, and its answer to leave
  size_t websocket_queue = 512;                    // unsent messages per client before it is dropped
  size_t websocket_queue_bytes = size_t{8} << 20;  // and their bytes
  size_t max_pending_events = 100'000;  // updates waiting for the server's thread
  int status_interval_ms = 1000;        // how often status changes are sent on the stream
};

class HttpServer {
 public:
  HttpServer(HttpRoutes& routes, HttpServerOptions options, std::function<void(int, const std::string&)> log);
  ~HttpServer();  // stop()

  // Binds and starts the thread. The port is known after it.
  Status start();
  void stop();
  uint16_t port() const;
  // The dashboard's address, with ?token= when a token is required.
  std::string url() const;
  // Committed updates for the event stream (any thread; never blocks).
  void on_committed(const std::vector<Update>& updates);
  // The server's own counters (connections, responses, WebSocket clients).
  void fill_metrics(MetricsInput& in) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace replog::http
