// Engine benchmarks on the real store (SQLite file, WAL, synchronous=FULL),
// the real event loop, an in-process provider and the builtin noop tool.
//
//   engine_bench w1 [steps]              one run of N journal steps (and the
//                                        disk's overwrite+fdatasync p50 around it)
//   engine_bench w2 [concurrency...]     C concurrent runs x 10 steps
//   engine_bench w3 [steps]              one run of N steps: latency by step index,
//                                        then kill -9 mid-run and time the resume
// BENCH_STORE=postgres://... runs them on PostgreSQL (its tables are dropped
// first); the default is a SQLite file in BENCH_DIR. BENCH_ENCRYPTION=1 puts
// the sealing layer (encryption at rest) over the store, as the server does.
// Commits made on the loop are coalesced as in the server (BENCH_COALESCE_US,
// default 1000; 0 = each at once).
// Each prints one JSON line. A "step" is one committed journal entry of a
// model or tool call; the provider asks for the noop tool until the run has
// made the wanted number of model calls, then answers.
#include <cstdlib>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "core/process.h"
#include "core/log.h"
#include "engine/engine.h"
#include "net/event_loop.h"
#include "core/config.h"
#include "crypto/keyring.h"
#include "store/open_store.h"
#include "store/coalescing_store.h"
#include "store/sealing_store.h"
#include "store/postgres/pg_connection.h"

using namespace continuum;

namespace {

// CONTINUUM_BENCH_WAIT_FOR_COMMITS=1: every step waits for the commit of the
// one before (the engine runs nothing ahead), as if no effect were in process.
bool wait_for_commits() { return std::getenv("CONTINUUM_BENCH_WAIT_FOR_COMMITS") != nullptr; }

// Asks for the noop tool until a run has made `model_calls_per_run` calls.
class CountingProvider final : public ModelProvider {
 public:
  CountingProvider(EventLoop& loop, int64_t model_calls_per_run) : loop_(loop), calls_max_(model_calls_per_run) {}
  void complete(const ModelRequest& request, std::function<void(std::string_view)>,
                std::function<void(ModelOutcome)> done) override {
    int64_t call = ++calls_[request.run_id];
    ModelResponse response;
    if (call < calls_max_) {
      json::object function{{"name", "noop"}, {"arguments", "{}"}};
      json::object tool_call{{"id", "c" + std::to_string(call)}, {"type", "function"}, {"function", function}};
      response.message = json::object{{"role", "assistant"}, {"content", nullptr},
                                      {"tool_calls", json::array{tool_call}}};
    } else {
      response.message = json::object{{"role", "assistant"}, {"content", "done"}};
    }
    response.usage = Usage{10, 2, 12};
    loop_.post([done = std::move(done), response = std::move(response)] { done(ModelOutcome{response, {}}); });
  }
  // What it is: the engine may run its calls ahead of earlier steps' commits
  // (CONTINUUM_BENCH_WAIT_FOR_COMMITS=1 measures the engine as if it could not).
  bool in_process() const override { return !wait_for_commits(); }

 private:
  EventLoop& loop_;
  int64_t calls_max_;
  std::unordered_map<std::string, int64_t> calls_;  // loop thread only
};

class NoopTools final : public ToolRunner {
 public:
  explicit NoopTools(EventLoop& loop) : loop_(loop) {}
  void call(ToolCall, std::function<void(ToolOutcome)> done) override {
    loop_.post([done = std::move(done)] { done(ToolOutcome{true, "ok", false, {}}); });
  }

 private:
  EventLoop& loop_;
};

// The noop tool is builtin (run ahead like the model) unless every step is to
// wait for the commit of the one before: then the agent declares it an http
// tool, which the engine never runs ahead. NoopTools answers it either way.
std::string agent_spec_json() {
  std::string tool = wait_for_commits() ? R"({"type":"http","name":"noop","url":"http://127.0.0.1:9/noop"})"
                                        : R"({"type":"builtin","name":"noop"})";
  return R"({"name":"bench","model":{"provider":"scripted","model":"m","context_tokens":256},
    "tools":[)" + tool + R"(],"limits":{"max_steps":1000000}})";
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  return values[index];
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void drop_postgres_tables(const std::string& url) {
  auto connection = PgConnection::connect(url);
  CONTINUUM_CHECK(connection.is_ok(), "the benchmark database is reachable");
  CONTINUUM_CHECK((*connection)->exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public").is_ok(),
                  "the benchmark owns its database");
}

std::string env_or_default(const char* name, const char* fallback) {
  std::string value = read_process_env(name);
  return value.empty() ? fallback : value;
}

// The store and sealing a result was measured on, as leading JSON fields.
std::string run_label() {
  bool postgres = !read_process_env("BENCH_STORE").empty();
  bool sealed = read_process_env("BENCH_ENCRYPTION") == "1";
  return std::string("\"store\":\"") + (postgres ? "postgres" : "sqlite") + "\",\"encryption\":" +
         (sealed ? "true" : "false") + ",";
}

// BENCH_STORE if set, else the SQLite file in `dir`.
std::unique_ptr<Store> open_bench_store(const std::string& dir) {
  std::string url = read_process_env("BENCH_STORE");
  auto opened = open_store(url.empty() ? "sqlite:" + dir + "/bench.db" : url, dir, SystemClock::instance(), nullptr);
  CONTINUUM_CHECK(opened.is_ok(), "the benchmark store opens");
  return std::move(*opened);
}

// One benchmark world: a fresh data dir, store, loop thread and engine.
struct World {
  explicit World(const std::string& dir, int64_t model_calls_per_run, bool fresh = true) : dir_(dir) {
    if (fresh) {
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
    }
    if (fresh && !read_process_env("BENCH_STORE").empty()) drop_postgres_tables(read_process_env("BENCH_STORE"));
    backend = open_bench_store(dir_);
    store = backend.get();
    if (read_process_env("BENCH_ENCRYPTION") == "1") {
      keks = std::move(*LocalKeyEncryptionKeys::open("file:" + dir_ + "/master.key", read_process_env));
      keyring = std::make_unique<Keyring>(*backend, *keks, SystemClock::instance());
      sealing = std::make_unique<SealingStore>(*backend, *keyring, SystemRandom::instance());
      store = sealing.get();
    }
    CoalescingStore::Options coalescing_options;
    if (std::string us = read_process_env("BENCH_COALESCE_US"); !us.empty()) {
      coalescing_options.max_delay_us = std::stoll(us);
    }
    coalescing = std::make_unique<CoalescingStore>(*store, loop, SystemClock::instance(), coalescing_options);
    store = coalescing.get();
    provider = std::make_unique<CountingProvider>(loop, model_calls_per_run);
    tools = std::make_unique<NoopTools>(loop);
    engine = std::make_unique<Engine>(
        *store, loop, SystemClock::instance(), SystemRandom::instance(),
        [this](const ModelSpec&) -> ModelProvider* { return provider.get(); }, *tools, nullptr);
  }
  ~World() {
    loop.stop();
    if (thread.joinable()) thread.join();
    coalescing.reset();
    sealing.reset();
    backend.reset();
    engine.reset();
  }
  void start_loop() {
    loop.post([this] { coalescing->attach_to_loop_thread(); });
    thread = std::thread([this] { loop.run(); });
  }
  AgentRecord agent() {
    AgentRecord record{"t", "bench", 1, "", SystemClock::instance().now_ms()};
    auto spec = parse_agent_spec(*parse_json_object(agent_spec_json()));
    record.spec_json = to_json(agent_spec_to_json(*spec));
    WriteBatch batch;
    batch.agent_inserts.push_back(record);
    (void)store->commit_and_wait(std::move(batch));
    return record;
  }
  SessionRecord session(int index) {
    SessionRecord session{"t", "s" + std::to_string(index), "bench", "{}", 0};
    WriteBatch batch;
    batch.session_inserts.push_back(session);
    (void)store->commit_and_wait(std::move(batch));
    return session;
  }
  // Runs on the loop: submits a run and records the commit time of each of its steps.
  void submit(const SessionRecord& session, const AgentRecord& agent, std::vector<int64_t>* step_times_us,
              std::atomic<int>* finished) {
    loop.post([=, this] {
      engine->submit_run(session, agent, "go", [=, this](Result<RunRecord> run) {
        std::string run_id = run->id;
        engine->subscribe(run_id, [=](const RunEvent& event) {
          if (event.seq < 0) return;
          step_times_us->push_back(SystemClock::instance().monotonic_us());
          if (event.terminal) {
            ++*finished;
            finished->notify_all();
          }
        });
      });
    });
  }
  std::string dir_;
  AsioEventLoop loop;
  std::thread thread;
  std::unique_ptr<Store> backend;
  std::unique_ptr<LocalKeyEncryptionKeys> keks;
  std::unique_ptr<Keyring> keyring;
  std::unique_ptr<SealingStore> sealing;
  std::unique_ptr<CoalescingStore> coalescing;
  Store* store = nullptr;  // coalescing over sealing (if on) over backend
  std::unique_ptr<CountingProvider> provider;
  std::unique_ptr<NoopTools> tools;
  std::unique_ptr<Engine> engine;
};

std::vector<double> gaps_ms(const std::vector<int64_t>& times_us) {
  std::vector<double> gaps;
  for (size_t i = 1; i < times_us.size(); ++i) gaps.push_back(static_cast<double>(times_us[i] - times_us[i - 1]) / 1000);
  return gaps;
}

// Wakes when the counter moves (not on a polling period: a W2 level can last
// a few tens of milliseconds).
void wait_for(const std::atomic<int>& counter, int target) {
  for (int seen = counter.load(); seen < target; seen = counter.load()) counter.wait(seen);
}

// Runs one run of about `steps` steps to its end in `dir`; returns the gap
// between consecutive step commits, in ms, in step order.
std::vector<double> one_long_run(int64_t steps, const std::string& dir, bool fresh = true) {
  World world(dir, steps / 2, fresh);
  AgentRecord agent = world.agent();
  SessionRecord session = world.session(0);
  world.start_loop();
  std::vector<int64_t> times;
  times.reserve(static_cast<size_t>(steps) + 8);
  std::atomic<int> finished{0};
  world.submit(session, agent, &times, &finished);
  wait_for(finished, 1);
  return gaps_ms(times);
}

// The disk's own latency for what a small commit costs the store: a 4 KiB
// write over a block already written, then fdatasync (the WAL is written
// ahead, so a commit's sync extends no file). In `dir`, p50 of 500, in ms.
double overwrite_fsync_p50_ms(const std::string& dir) {
  std::string path = dir + "/fsync-probe";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  CONTINUUM_CHECK(fd >= 0, "the benchmark directory is writable");
  constexpr int kBlocks = 256;
  std::vector<char> block(4096, 'x');
  for (int i = 0; i < kBlocks; ++i) CONTINUUM_CHECK(::pwrite(fd, block.data(), block.size(), i * 4096L) == 4096, "write");
  CONTINUUM_CHECK(::fdatasync(fd) == 0, "fdatasync");
  std::vector<double> samples;
  for (int i = 0; i < 500; ++i) {
    CONTINUUM_CHECK(::pwrite(fd, block.data(), block.size(), (i % kBlocks) * 4096L) == 4096, "write");
    int64_t start = SystemClock::instance().monotonic_us();
    CONTINUUM_CHECK(::fdatasync(fd) == 0, "fdatasync");
    samples.push_back(static_cast<double>(SystemClock::instance().monotonic_us() - start) / 1000);
  }
  ::close(fd);
  std::filesystem::remove(path);
  return percentile(samples, 0.5);
}

int w1(int64_t steps, const std::string& dir) {
  double fsync_before = overwrite_fsync_p50_ms(dir);
  std::vector<double> gaps = one_long_run(steps, dir);
  double fsync_after = overwrite_fsync_p50_ms(dir);
  double fsync = (fsync_before + fsync_after) / 2;
  std::printf("{%s\"workload\":\"W1\",\"steps\":%zu,\"step_ms_p50\":%.4f,\"step_ms_p99\":%.4f,\"step_ms_max\":%.4f,"
              "\"overwrite_fsync_ms_p50\":%.4f,\"step_p50_over_fsync_ms\":%.4f}\n",
              run_label().c_str(), gaps.size(), percentile(gaps, 0.5), percentile(gaps, 0.99), percentile(gaps, 1.0), fsync,
              percentile(gaps, 0.5) - fsync);
  return 0;
}

int w2(const std::vector<int>& levels, const std::string& dir) {
  for (int concurrency : levels) {
    // By default 5 model + 4 tool steps + terminal = 10 steps per run;
    // BENCH_W2_MODEL_CALLS makes runs longer (and measurements steadier).
    int64_t model_calls = std::max<int64_t>(1, std::atoll(env_or_default("BENCH_W2_MODEL_CALLS", "5").c_str()));
    World world(dir, model_calls);
    AgentRecord agent = world.agent();
    std::vector<SessionRecord> sessions;
    for (int i = 0; i < concurrency; ++i) sessions.push_back(world.session(i));
    world.start_loop();
    std::vector<std::vector<int64_t>> times(static_cast<size_t>(concurrency));
    std::atomic<int> finished{0};
    StoreStats before = world.store->stats();
    double cpu_before = cpu_seconds();
    int64_t start_us = SystemClock::instance().monotonic_us();
    for (int i = 0; i < concurrency; ++i) world.submit(sessions[static_cast<size_t>(i)], agent, &times[static_cast<size_t>(i)], &finished);
    wait_for(finished, concurrency);
    double wall_s = static_cast<double>(SystemClock::instance().monotonic_us() - start_us) / 1e6;
    double cpu = cpu_seconds() - cpu_before;
    StoreStats after = world.store->stats();
    std::vector<double> gaps;
    size_t steps = 0;
    for (auto& run_times : times) {
      steps += run_times.size();
      for (double gap : gaps_ms(run_times)) gaps.push_back(gap);
    }
    double transactions = static_cast<double>(after.transactions_committed - before.transactions_committed);
    std::printf("{%s\"workload\":\"W2\",\"concurrency\":%d,\"steps\":%zu,\"wall_s\":%.3f,\"steps_per_s\":%.0f,"
                "\"step_ms_p50\":%.3f,\"step_ms_p99\":%.3f,\"steps_per_fsync\":%.2f,\"cpu_s_per_1000_steps\":%.4f}\n",
                run_label().c_str(), concurrency, steps, wall_s, static_cast<double>(steps) / wall_s,
                percentile(gaps, 0.5),
                percentile(gaps, 0.99), static_cast<double>(steps) / std::max(1.0, transactions),
                cpu / static_cast<double>(steps) * 1000);
    std::fflush(stdout);
  }
  return 0;
}

std::string self_path() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

// The process W3 kills: runs one long run until SIGKILL arrives.
int w3_child(const std::string& dir, int64_t steps) {
  (void)one_long_run(steps, dir, /*fresh=*/false);
  return 0;
}

int w3(int64_t steps, const std::string& dir) {
  // Part 1: latency by step index over a long run.
  {
    std::vector<double> gaps = one_long_run(steps, dir);
    size_t tenth = gaps.size() / 10;
    std::printf("{%s\"workload\":\"W3\",\"steps\":%zu,\"step_ms_p50_by_decile\":[", run_label().c_str(),
                gaps.size());
    for (int d = 0; d < 10; ++d) {
      std::vector<double> slice(gaps.begin() + static_cast<long>(tenth * static_cast<size_t>(d)),
                                gaps.begin() + static_cast<long>(tenth * static_cast<size_t>(d + 1)));
      std::printf("%s%.4f", d ? "," : "", percentile(slice, 0.5));
    }
    std::printf("],");
  }
  // Part 2: a child process runs a long run; it is killed with SIGKILL half-way.
  std::string crash_dir = dir + "-crash";
  std::filesystem::remove_all(crash_dir);
  std::filesystem::create_directories(crash_dir);
  std::fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    // A fresh process image: no threads or buffers inherited from part 1.
    execl(self_path().c_str(), "engine_bench", "w3-child", crash_dir.c_str(), std::to_string(steps).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  {
    auto probe = open_bench_store(crash_dir);
    for (;;) {
      auto runs = probe->list_unfinished_runs();
      if (runs.is_ok() && !runs->empty()) {
        auto snapshot = snapshot_from_json(runs->front().snapshot_json);
        if (snapshot.is_ok() && snapshot->next_seq >= steps / 2) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  int64_t start_us = SystemClock::instance().monotonic_us();
  World world(crash_dir, steps, /*fresh=*/false);
  std::atomic<int64_t> first_step_us{0};
  world.loop.post([&] {
    (void)world.engine->recover();
    auto runs = world.store->list_unfinished_runs();
    std::string run_id = runs->front().id;
    world.engine->subscribe(run_id, [&](const RunEvent& event) {
      if (event.seq >= 0 && first_step_us.load() == 0) first_step_us = SystemClock::instance().monotonic_us();
    });
  });
  world.start_loop();
  while (first_step_us.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  std::printf("\"resume_after_kill9_ms\":%.3f,\"history_steps_at_kill\":%lld}\n",
              static_cast<double>(first_step_us.load() - start_us) / 1000, static_cast<long long>(steps / 2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  continuum::tune_process_resources();
  continuum::log::set_level(continuum::log::Level::kWarn);
  std::string workload = argc > 1 ? argv[1] : "w1";
  std::string dir = std::filesystem::temp_directory_path().string() + "/continuum-bench";
  if (const char* env = std::getenv("BENCH_DIR")) dir = env;
  if (workload == "w1") return w1(argc > 2 ? std::atoll(argv[2]) : 1000, dir);
  if (workload == "w3-child" && argc > 3) return w3_child(argv[2], std::atoll(argv[3]));
  if (workload == "w3") return w3(argc > 2 ? std::atoll(argv[2]) : 20000, dir);
  if (workload == "w2") {
    std::vector<int> levels;
    for (int i = 2; i < argc; ++i) levels.push_back(std::atoi(argv[i]));
    if (levels.empty()) levels = {10, 100, 1000};
    return w2(levels, dir);
  }
  std::cerr << "usage: engine_bench w1|w2|w3 [args]\n";
  return 2;
}
