#include "net/event_loop.h"

#include <atomic>
#include <deque>
#include <iterator>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>

namespace continuum {

namespace asio = boost::asio;

namespace {
constexpr int kContinuationsInRow = 64;  // then I/O and posted tasks get their turn
}  // namespace

struct AsioEventLoop::Impl {
  using Task = std::function<void()>;

  asio::io_context context{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{context.get_executor()};
  std::unique_ptr<asio::signal_set> signals;
  std::atomic<int64_t> pending_tasks{0};  // posted (either way) and not yet started
  std::atomic<std::thread::id> loop_thread{};
  // Loop thread only: continuations waiting, next first; those posted by the
  // task running now (null while an I/O handler runs); a drain is posted.
  std::deque<Task> continuations;
  std::vector<Task>* posted_by_running = nullptr;
  bool drain_posted = false;

  // Runs `task`; what it posts as continuations goes first in line, in order.
  void run_task(Task& task) {
    std::vector<Task> posted;
    std::vector<Task>* outer = posted_by_running;
    posted_by_running = &posted;
    task();
    posted_by_running = outer;
    continuations.insert(continuations.begin(), std::make_move_iterator(posted.begin()),
                         std::make_move_iterator(posted.end()));
  }

  void drain() {
    for (int ran = 0; ran < kContinuationsInRow && !continuations.empty(); ++ran) {
      Task task = std::move(continuations.front());
      continuations.pop_front();
      pending_tasks.fetch_sub(1, std::memory_order_relaxed);
      run_task(task);
    }
    if (!continuations.empty()) post_drain();
  }

  void post_drain() {
    if (drain_posted) return;
    drain_posted = true;
    asio::post(context, [this] {
      drain_posted = false;
      drain();
    });
  }
};

AsioEventLoop::AsioEventLoop() : impl_(std::make_unique<Impl>()) {}
AsioEventLoop::~AsioEventLoop() = default;

void AsioEventLoop::post(std::function<void()> task) {
  impl_->pending_tasks.fetch_add(1, std::memory_order_relaxed);
  asio::post(impl_->context, [impl = impl_.get(), task = std::move(task)]() mutable {
    impl->pending_tasks.fetch_sub(1, std::memory_order_relaxed);
    impl->run_task(task);
    impl->drain();
  });
}

void AsioEventLoop::post_continuation(std::function<void()> task) {
  if (std::this_thread::get_id() != impl_->loop_thread.load(std::memory_order_relaxed)) return post(std::move(task));
  impl_->pending_tasks.fetch_add(1, std::memory_order_relaxed);
  if (impl_->posted_by_running != nullptr) {
    impl_->posted_by_running->push_back(std::move(task));
    return;
  }
  impl_->continuations.push_back(std::move(task));  // from an I/O or timer handler
  impl_->post_drain();
}

bool AsioEventLoop::has_pending_tasks() const { return impl_->pending_tasks.load(std::memory_order_relaxed) > 0; }

void AsioEventLoop::post_after(int64_t delay_ms, std::function<void()> task) {
  auto timer = std::make_shared<asio::steady_timer>(impl_->context, std::chrono::milliseconds(delay_ms));
  timer->async_wait([timer, task = std::move(task)](const boost::system::error_code& error) {
    if (!error) task();
  });
}

void AsioEventLoop::run() {
  impl_->loop_thread.store(std::this_thread::get_id(), std::memory_order_relaxed);
  impl_->context.run();
}

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
