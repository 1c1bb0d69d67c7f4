// Session leases in PostgreSQL, shared by every node on one database.
//
// Tables (store migration 3): session_leases (tenant, session) -> node, epoch,
// expires_at_ms; nodes (heartbeats); cancel_requests. Lease times use the
// database's clock, so nodes need not agree on time.
//
// The cluster thread, every lease_ttl/3: heartbeat, renew this node's live
// leases and report those it lost. Every poll interval, and when woken by
// NOTIFY continuum_work: claim sessions that have queued or running runs and
// no live lease (an INSERT .. ON CONFLICT DO UPDATE .. WHERE expired: of
// several nodes claiming at once exactly one wins), and report cancel
// requests for runs in sessions this node holds.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "cluster/cluster.h"
#include "core/clock.h"
#include "store/postgres/pg_connection.h"

namespace continuum {

struct PostgresClusterOptions {
  std::string url;
  std::string node_id;          // stable across restarts of this node
  std::string address;          // shown in GET /v1/cluster
  int64_t lease_ttl_ms = 10'000;
  int64_t poll_ms = 1'000;      // bound on how long orphaned work waits for a claim
  int claims_per_sweep_max = 200;
};

class PostgresCluster final : public Cluster {
 public:
  static Result<std::unique_ptr<PostgresCluster>> open(PostgresClusterOptions options, const Clock& clock);
  ~PostgresCluster() override;

  bool shared() const override { return true; }
  const std::string& node_id() const override { return options_.node_id; }
  Result<int64_t> acquire(const std::string& tenant, const std::string& session) override;
  void release(const std::string& tenant, const std::string& session, int64_t epoch) override;
  bool lease_fresh() const override;
  bool holds(const std::string& tenant, const std::string& session) const override;
  Status request_cancel(const std::string& tenant, const std::string& run_id) override;
  Result<json::object> describe() override;
  void start(ClusterHandlers handlers) override;
  void stop() override;

 private:
  using SessionKey = std::pair<std::string, std::string>;

  PostgresCluster(PostgresClusterOptions options, const Clock& clock) : options_(std::move(options)), clock_(clock) {}
  void thread_main();
  Status ensure_thread_connection();
  void renew();
  void sweep();
  void report_cancel_requests();
  void forget_what_is_done();
  void wait_for_wakeup(int64_t timeout_ms);
  void remember(const std::string& tenant, const std::string& session, int64_t epoch);

  PostgresClusterOptions options_;
  const Clock& clock_;
  ClusterHandlers handlers_;

  std::mutex loop_mutex_;
  std::unique_ptr<PgConnection> loop_connection_;  // guarded by loop_mutex_
  std::unique_ptr<PgConnection> thread_connection_;  // cluster thread only (LISTENs)

  mutable std::mutex held_mutex_;
  std::map<SessionKey, int64_t> held_;  // leases this node believes it holds; guarded by held_mutex_

  // Monotonic time of the last successful renewal (or of opening, when this
  // node held nothing): every lease it held then lives until this + TTL.
  std::atomic<int64_t> renewed_at_ms_{0};
  std::atomic<bool> stopping_{false};
  int wake_pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace continuum
