// The stdio transport: the server is a child process started without a shell
// (posix_spawnp), in its own process group; one JSON-RPC message per line on
// its stdin and stdout; its stderr goes to our log, line by line.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/socket.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <deque>

#include "core/log.h"
#include "net/event_loop.h"
#include "tools/mcp/mcp_protocol.h"
#include "tools/mcp/mcp_transport.h"

extern char** environ;

namespace continuum {

namespace {

namespace asio = boost::asio;

constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr std::size_t kStderrLineShownMax = 2000;
constexpr int64_t kReapPollMs = 50;
// Inherited from our environment; everything else the server gets is in its spec.
constexpr const char* kInheritedEnv[] = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"};

struct Pipe {
  int read_end = -1;
  int write_end = -1;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return unavailable(std::string("pipe failed: ") + std::strerror(errno));
  return Pipe{fds[0], fds[1]};
}

// The child's stdin is a socket, not a pipe: writing to a pipe whose reader
// died raises SIGPIPE, which would end this process; a socket write fails
// with EPIPE instead (Asio sends with MSG_NOSIGNAL).
Result<Pipe> make_stdin_socket() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return unavailable(std::string("socketpair failed: ") + std::strerror(errno));
  }
  shutdown(fds[0], SHUT_WR);  // the child's end only reads
  shutdown(fds[1], SHUT_RD);  // ours only writes
  return Pipe{fds[0], fds[1]};
}

std::vector<std::string> child_environment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> merged;
  for (const char* name : kInheritedEnv) {
    if (const char* value = std::getenv(name)) merged[name] = value;
  }
  for (const auto& [name, value] : extra) merged[name] = value;
  std::vector<std::string> entries;
  for (const auto& [name, value] : merged) entries.push_back(name + "=" + value);
  return entries;
}

// Shared with the asynchronous handlers, so that it outlives the transport
// object until the child is reaped.
class StdioChild : public std::enable_shared_from_this<StdioChild> {
 public:
  StdioChild(asio::io_context& context, McpStdioOptions options)
      : context_(context), options_(std::move(options)), stdin_(context), stdout_(context), stderr_(context),
        reap_timer_(context) {}

  Status start(McpTransport::Handlers handlers) {
    handlers_ = std::move(handlers);
    Pipe in, out, err;
    Status spawned = make_pipes(in, out, err);
    if (spawned.is_ok()) spawned = spawn(in, out, err);
    for (int fd : {in.read_end, out.write_end, err.write_end}) close_fd(fd);
    if (!spawned.is_ok()) {
      for (int fd : {in.write_end, out.read_end, err.read_end}) close_fd(fd);
      return spawned;
    }
    stdin_.assign(asio::local::stream_protocol(), in.write_end);
    stdout_.assign(out.read_end);
    stderr_.assign(err.read_end);
    read_stdout();
    read_stderr();
    return Status::ok();
  }

  void send(std::string text) {
    if (closed_ || exited_) return;
    text += '\n';
    writes_.push_back(std::move(text));
    if (writes_.size() == 1) write_next();
  }

  // Polite stop: EOF on stdin, then SIGTERM, then SIGKILL; the child is reaped.
  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    stdin_.close(ignored);
    if (pid_ > 0 && !reaped_) {
      stop_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.stop_grace_ms);
      reap_later();
    }
  }

  int pid() const { return pid_; }

  // The last resort, when the loop no longer runs (the process is exiting):
  // whatever was not reaped is killed with its process group.
  ~StdioChild() {
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, WNOHANG);
    }
  }

 private:
  static void close_fd(int fd) {
    if (fd >= 0) ::close(fd);
  }

  static Status make_pipes(Pipe& in, Pipe& out, Pipe& err) {
    for (Pipe* pipe : {&in, &out, &err}) {
      auto made = pipe == &in ? make_stdin_socket() : make_pipe();
      if (!made.is_ok()) return made.status();  // the caller closes what was made
      *pipe = *made;
    }
    return Status::ok();
  }

  Status spawn(const Pipe& in, const Pipe& out, const Pipe& err) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.read_end, 0);
    posix_spawn_file_actions_adddup2(&actions, out.write_end, 1);
    posix_spawn_file_actions_adddup2(&actions, err.write_end, 2);
    // Nothing else of ours: not the API's sockets, not the store's files.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults, none;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int signal_number : {SIGPIPE, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&defaults, signal_number);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setpgroup(&attributes, 0);  // its own group: a stop reaches its children too
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(options_.command.c_str()));
    for (auto& arg : options_.args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env_entries = child_environment(options_.env);
    std::vector<char*> envp;
    for (auto& entry : env_entries) envp.push_back(entry.data());
    envp.push_back(nullptr);
    int error = posix_spawnp(&pid_, options_.command.c_str(), &actions, &attributes, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
      pid_ = 0;
      return unavailable("cannot start MCP server '" + options_.server_name + "' (" + options_.command +
                         "): " + std::strerror(error));
    }
    log::info("mcp server started", {{"server", options_.server_name}, {"pid", std::to_string(pid_)}});
    return Status::ok();
  }

  void write_next() {
    asio::async_write(stdin_, asio::buffer(writes_.front()),
                      [self = shared_from_this()](boost::system::error_code error, std::size_t) {
                        self->writes_.pop_front();
                        if (error) {
                          self->writes_.clear();  // the child is gone; the stdout EOF reports it
                          return;
                        }
                        if (!self->writes_.empty()) self->write_next();
                      });
  }

  void read_stdout() {
    stdout_.async_read_some(asio::buffer(stdout_chunk_),
                            [self = shared_from_this()](boost::system::error_code error, std::size_t bytes) {
                              self->on_stdout(error, bytes);
                            });
  }

  void on_stdout(boost::system::error_code error, std::size_t bytes) {
    if (!error) {
      if (!take_lines(stdout_line_, std::string_view(stdout_chunk_.data(), bytes), true)) {
        ::kill(-pid_, SIGKILL);
        finish(invalid_argument("MCP server '" + options_.server_name + "' wrote a message over the size limit"));
        return;
      }
      read_stdout();
      return;
    }
    finish(unavailable("MCP server '" + options_.server_name + "' closed its output"));
  }

  void read_stderr() {
    stderr_.async_read_some(asio::buffer(stderr_chunk_),
                            [self = shared_from_this()](boost::system::error_code error, std::size_t bytes) {
                              if (error) return;
                              self->take_lines(self->stderr_line_, std::string_view(self->stderr_chunk_.data(), bytes),
                                               false);
                              self->read_stderr();
                            });
  }

  // Splits `bytes` into lines; false if a stdout line outgrows the limit.
  bool take_lines(std::string& line, std::string_view bytes, bool is_stdout) {
    for (char c : bytes) {
      if (c != '\n') {
        if (line.size() < kMcpMessageBytesMax) line += c;
        else if (is_stdout) return false;
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (is_stdout && !line.empty() && !closed_ && handlers_.on_message) handlers_.on_message(line);
      if (!is_stdout && !line.empty()) {
        log::info("mcp server stderr", {{"server", options_.server_name},
                                        {"line", line.substr(0, kStderrLineShownMax)}});
      }
      line.clear();
    }
    return true;
  }

  // The child's output ended: reap it, then tell the owner (unless it closed us).
  void finish(Status status) {
    if (exited_) return;
    exited_ = true;
    closed_status_ = std::move(status);
    if (!closed_) stop_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.stop_grace_ms);
    reap_later();
  }

  void reap_later() {
    if (reaping_) return;
    reaping_ = true;
    reap_step();
  }

  void reap_step() {
    int wait_status = 0;
    pid_t done = ::waitpid(pid_, &wait_status, WNOHANG);
    if (done == pid_ || (done < 0 && errno == ECHILD)) {
      reaped_ = true;
      std::string how = done != pid_              ? "unknown"
                        : WIFEXITED(wait_status) ? "exit " + std::to_string(WEXITSTATUS(wait_status))
                                                 : "signal " + std::to_string(WTERMSIG(wait_status));
      log::info("mcp server stopped", {{"server", options_.server_name}, {"pid", std::to_string(pid_)}, {"how", how}});
      boost::system::error_code ignored;
      stdout_.close(ignored);
      stderr_.close(ignored);
      stdin_.close(ignored);
      if (!closed_ && handlers_.on_closed) {
        handlers_.on_closed(Status(closed_status_.code(), closed_status_.message() + " (" + how + ")"));
      }
      handlers_ = {};  // drops the owner's callbacks: nothing runs after this
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= stop_deadline_ && !sent_kill_) {
      // First SIGTERM, then, one more grace period later, SIGKILL.
      ::kill(-pid_, sent_term_ ? SIGKILL : SIGTERM);
      sent_kill_ = sent_term_;
      sent_term_ = true;
      stop_deadline_ = now + std::chrono::milliseconds(options_.stop_grace_ms);
    }
    reap_timer_.expires_after(std::chrono::milliseconds(kReapPollMs));
    reap_timer_.async_wait([self = shared_from_this()](boost::system::error_code) { self->reap_step(); });
  }

  asio::io_context& context_;
  McpStdioOptions options_;
  McpTransport::Handlers handlers_;
  asio::local::stream_protocol::socket stdin_;
  asio::posix::stream_descriptor stdout_;
  asio::posix::stream_descriptor stderr_;
  asio::steady_timer reap_timer_;
  std::array<char, kReadChunkBytes> stdout_chunk_{};
  std::array<char, 4096> stderr_chunk_{};
  std::string stdout_line_;
  std::string stderr_line_;
  std::deque<std::string> writes_;
  pid_t pid_ = 0;
  bool closed_ = false;  // the owner closed us: no handler runs again
  bool exited_ = false;  // stdout ended
  bool reaping_ = false;
  bool reaped_ = false;
  bool sent_term_ = false;
  bool sent_kill_ = false;
  Status closed_status_;
  std::chrono::steady_clock::time_point stop_deadline_{};
};

class StdioTransport final : public McpTransport {
 public:
  StdioTransport(AsioEventLoop& loop, McpStdioOptions options)
      : child_(std::make_shared<StdioChild>(loop.context(), std::move(options))) {}
  ~StdioTransport() override { child_->close(); }
  Status start(Handlers handlers) override { return child_->start(std::move(handlers)); }
  void send(McpOutgoing message) override {
    child_->send(std::move(message.text));
    if (message.delivered) message.delivered();
  }
  void set_protocol_version(std::string) override {}
  void close() override { child_->close(); }
  int pid() const override { return child_->pid(); }

 private:
  std::shared_ptr<StdioChild> child_;
};

}  // namespace

std::unique_ptr<McpTransport> make_mcp_stdio_transport(AsioEventLoop& loop, McpStdioOptions options) {
  return std::make_unique<StdioTransport>(loop, std::move(options));
}

}  // namespace continuum
