#include "net/event_loop.h"

#include <atomic>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>

namespace continuum {

namespace asio = boost::asio;

struct AsioEventLoop::Impl {
  asio::io_context context{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{context.get_executor()};
  std::unique_ptr<asio::signal_set> signals;
  std::atomic<int64_t> pending_tasks{0};  // posted and not yet started
};

AsioEventLoop::AsioEventLoop() : impl_(std::make_unique<Impl>()) {}
AsioEventLoop::~AsioEventLoop() = default;

void AsioEventLoop::post(std::function<void()> task) {
  impl_->pending_tasks.fetch_add(1, std::memory_order_relaxed);
  asio::post(impl_->context, [impl = impl_.get(), task = std::move(task)] {
    impl->pending_tasks.fetch_sub(1, std::memory_order_relaxed);
    task();
  });
}

bool AsioEventLoop::has_pending_tasks() const { return impl_->pending_tasks.load(std::memory_order_relaxed) > 0; }

void AsioEventLoop::post_after(int64_t delay_ms, std::function<void()> task) {
  auto timer = std::make_shared<asio::steady_timer>(impl_->context, std::chrono::milliseconds(delay_ms));
  timer->async_wait([timer, task = std::move(task)](const boost::system::error_code& error) {
    if (!error) task();
  });
}

void AsioEventLoop::run() { impl_->context.run(); }

void AsioEventLoop::stop() {
  impl_->work.reset();
  impl_->context.stop();
}

void AsioEventLoop::on_terminate_signal(std::function<void(int)> handler) {
  impl_->signals = std::make_unique<asio::signal_set>(impl_->context, SIGINT, SIGTERM);
  impl_->signals->async_wait([handler = std::move(handler)](const boost::system::error_code& error, int signal) {
    if (!error) handler(signal);
  });
}

asio::io_context& AsioEventLoop::context() { return impl_->context; }

}  // namespace continuum
