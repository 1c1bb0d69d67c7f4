// The production EventLoop: a Boost.Asio io_context run by one thread.
// The engine, the HTTP server and the HTTP client all run on it.
#pragma once

#include <memory>

#include "engine/event_loop.h"

namespace boost::asio {
class io_context;
}

namespace continuum {

class AsioEventLoop final : public EventLoop {
 public:
  AsioEventLoop();
  ~AsioEventLoop() override;
  void post(std::function<void()> task) override;
  // At most kContinuationsInRow continuations run before other handlers.
  void post_continuation(std::function<void()> task) override;
  void post_after(int64_t delay_ms, std::function<void()> task) override;
  bool has_pending_tasks() const override;
  // Runs until stop() (blocks the calling thread, which becomes the loop thread).
  void run();
  void stop();
  // Runs `handler(signal_number)` on the loop when SIGINT or SIGTERM arrives.
  void on_terminate_signal(std::function<void(int)> handler);
  boost::asio::io_context& context();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace continuum
