#include "cluster/postgres_cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "core/log.h"

namespace continuum {

namespace {

constexpr int64_t kMinSweepGapMs = 20;
constexpr int64_t kLeasesShownMax = 1000;  // GET /v1/cluster lists at most this many leases

// The database's clock, in ms since the epoch: every lease time uses it.
constexpr const char* kNowMs = CONTINUUM_PG_NOW_MS;

std::string sql(std::string text) {
  for (size_t at = text.find("NOW_MS"); at != std::string::npos; at = text.find("NOW_MS")) {
    text.replace(at, 6, kNowMs);
  }
  return text;
}

// Takes the lease if it is free or expired (or, with `mine_too`, held by this
// node): bumps the epoch. Returns the epoch, or nullopt if a live lease of
// another node stands.
Result<std::optional<int64_t>> claim_lease(PgConnection& connection, const PostgresClusterOptions& options,
                                           const std::string& tenant, const std::string& session, bool mine_too) {
  static const std::string kClaim = sql(
      "INSERT INTO session_leases (tenant_id, session_id, node_id, epoch, expires_at_ms) "
      "VALUES ($1, $2, $3, 1, NOW_MS + $4) ON CONFLICT (tenant_id, session_id) DO UPDATE SET "
      "node_id = EXCLUDED.node_id, epoch = session_leases.epoch + 1, expires_at_ms = EXCLUDED.expires_at_ms "
      "WHERE session_leases.expires_at_ms <= NOW_MS OR ($5 = 1 AND session_leases.node_id = $3) RETURNING epoch");
  ASSIGN_OR_RETURN(auto rows, connection.exec(kClaim, PgParams().add(tenant).add(session).add(options.node_id)
                                                          .add(options.lease_ttl_ms).add(int64_t{mine_too ? 1 : 0})));
  if (rows.rows() == 0) return std::optional<int64_t>();
  return std::optional<int64_t>(rows.int64(0, 0));
}

}  // namespace

Result<std::unique_ptr<PostgresCluster>> PostgresCluster::open(PostgresClusterOptions options, const Clock& clock) {
  std::unique_ptr<PostgresCluster> cluster(new PostgresCluster(std::move(options), clock));
  ASSIGN_OR_RETURN(cluster->loop_connection_, PgConnection::connect(cluster->options_.url));
  // A previous incarnation of this node holds nothing any more: free its
  // leases now rather than waiting for them to expire.
  RETURN_IF_ERROR(cluster->loop_connection_
                      ->exec("UPDATE session_leases SET expires_at_ms = 0 WHERE node_id = $1",
                             PgParams().add(cluster->options_.node_id))
                      .status());
  if (::pipe2(cluster->wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return internal_error("cannot create a pipe");
  cluster->renewed_at_ms_ = clock.monotonic_us() / 1000;
  return cluster;
}

PostgresCluster::~PostgresCluster() {
  stop();
  for (int fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

void PostgresCluster::start(ClusterHandlers handlers) {
  handlers_ = std::move(handlers);
  thread_ = std::thread([this] { thread_main(); });
}

void PostgresCluster::stop() {
  stopping_ = true;
  if (wake_pipe_[1] >= 0) (void)!::write(wake_pipe_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
}

void PostgresCluster::remember(const std::string& tenant, const std::string& session, int64_t epoch) {
  std::lock_guard lock(held_mutex_);
  int64_t& held = held_[{tenant, session}];
  held = std::max(held, epoch);  // a sweep and an acquire of the same session may report out of order
}

bool PostgresCluster::holds(const std::string& tenant, const std::string& session) const {
  std::lock_guard lock(held_mutex_);
  return held_.count({tenant, session}) > 0;
}

bool PostgresCluster::lease_fresh() const {
  // Renewals come every TTL/3; a third of the TTL is left as margin for the
  // database's clock running apart from ours.
  int64_t age_ms = clock_.monotonic_us() / 1000 - renewed_at_ms_.load();
  return age_ms < options_.lease_ttl_ms * 2 / 3;
}

Result<int64_t> PostgresCluster::acquire(const std::string& tenant, const std::string& session) {
  std::lock_guard lock(loop_mutex_);
  if (!loop_connection_->healthy()) RETURN_IF_ERROR(loop_connection_->reconnect());
  ASSIGN_OR_RETURN(auto epoch, claim_lease(*loop_connection_, options_, tenant, session, /*mine_too=*/true));
  if (!epoch) return conflict("session " + session + " is leased by another node");
  remember(tenant, session, *epoch);
  return *epoch;
}

void PostgresCluster::release(const std::string& tenant, const std::string& session, int64_t epoch) {
  {
    std::lock_guard lock(held_mutex_);
    auto held = held_.find({tenant, session});
    if (held != held_.end() && held->second == epoch) held_.erase(held);
  }
  std::lock_guard lock(loop_mutex_);
  // Expired, not deleted: the row keeps the epoch counting up.
  auto released = loop_connection_->exec(
      "UPDATE session_leases SET expires_at_ms = 0 WHERE tenant_id = $1 AND session_id = $2 AND node_id = $3 "
      "AND epoch = $4",
      PgParams().add(tenant).add(session).add(options_.node_id).add(epoch));
  if (!released.is_ok()) {
    log::warn("cannot release a session lease; it expires on its own",
              {{"session_id", session}, {"error", released.status().to_string()}});
  }
  (void)loop_connection_->exec_script("NOTIFY continuum_work");
}

Status PostgresCluster::request_cancel(const std::string& tenant, const std::string& run_id) {
  std::lock_guard lock(loop_mutex_);
  if (!loop_connection_->healthy()) RETURN_IF_ERROR(loop_connection_->reconnect());
  RETURN_IF_ERROR(loop_connection_
                      ->exec(sql("INSERT INTO cancel_requests (tenant_id, run_id, requested_at_ms) "
                                 "VALUES ($1, $2, NOW_MS) ON CONFLICT DO NOTHING"),
                             PgParams().add(tenant).add(run_id))
                      .status());
  return loop_connection_->exec_script("NOTIFY continuum_work");
}

Result<json::object> PostgresCluster::describe() {
  std::lock_guard lock(loop_mutex_);
  if (!loop_connection_->healthy()) RETURN_IF_ERROR(loop_connection_->reconnect());
  ASSIGN_OR_RETURN(auto nodes, loop_connection_->exec(
                                   sql("SELECT n.node_id, n.address, n.started_at_ms, n.heartbeat_at_ms, "
                                       "(CASE WHEN n.heartbeat_at_ms > NOW_MS - $1 THEN 1 ELSE 0 END)::bigint, "
                                       "(SELECT COUNT(*) FROM session_leases l WHERE l.node_id = n.node_id "
                                       "AND l.expires_at_ms > NOW_MS), "
                                       "(SELECT COUNT(*) FROM session_leases l JOIN runs r ON r.tenant_id = "
                                       "l.tenant_id AND r.session_id = l.session_id WHERE l.node_id = n.node_id "
                                       "AND l.expires_at_ms > NOW_MS AND r.status IN ('running', 'waiting')) "
                                       "FROM nodes n ORDER BY n.node_id"),
                                   PgParams().add(options_.lease_ttl_ms)));
  // Which sessions each node holds (the first kLeasesShownMax of them).
  ASSIGN_OR_RETURN(auto leases, loop_connection_->exec(
                                    sql("SELECT node_id, tenant_id, session_id, epoch, expires_at_ms FROM "
                                        "session_leases WHERE expires_at_ms > NOW_MS ORDER BY node_id, tenant_id, "
                                        "session_id LIMIT $1"),
                                    PgParams().add(kLeasesShownMax)));
  std::map<std::string, json::array> leases_by_node;
  for (int row = 0; row < leases.rows(); ++row) {
    leases_by_node[leases.text(row, 0)].push_back(json::object{{"tenant", leases.text(row, 1)},
                                                               {"session_id", leases.text(row, 2)},
                                                               {"epoch", leases.int64(row, 3)},
                                                               {"expires_at_ms", leases.int64(row, 4)}});
  }
  json::array list;
  for (int row = 0; row < nodes.rows(); ++row) {
    list.push_back(json::object{{"id", nodes.text(row, 0)},
                                {"address", nodes.text(row, 1)},
                                {"started_at_ms", nodes.int64(row, 2)},
                                {"heartbeat_at_ms", nodes.int64(row, 3)},
                                {"alive", nodes.int64(row, 4) == 1},
                                {"sessions_leased", nodes.int64(row, 5)},
                                {"runs_running", nodes.int64(row, 6)},
                                {"leases", std::move(leases_by_node[nodes.text(row, 0)])}});
  }
  return json::object{{"object", "cluster"}, {"shared", true}, {"this_node", options_.node_id},
                      {"lease_ttl_ms", options_.lease_ttl_ms}, {"nodes", std::move(list)}};
}

// ---- the cluster thread ----

Status PostgresCluster::ensure_thread_connection() {
  if (thread_connection_ && thread_connection_->healthy()) return Status::ok();
  if (!thread_connection_) {
    ASSIGN_OR_RETURN(thread_connection_, PgConnection::connect(options_.url));
  } else {
    RETURN_IF_ERROR(thread_connection_->reconnect());
  }
  return thread_connection_->exec_script("LISTEN continuum_work");
}

void PostgresCluster::thread_main() {
  int64_t next_renew_ms = 0, next_sweep_ms = 0, last_sweep_ms = 0;
  while (!stopping_) {
    int64_t now_ms = clock_.monotonic_us() / 1000;
    Status connected = ensure_thread_connection();
    if (!connected.is_ok()) {
      log::warn("cluster: database unreachable", {{"error", connected.to_string()}});
      wait_for_wakeup(std::min<int64_t>(options_.poll_ms, 1000));
      continue;
    }
    if (now_ms >= next_renew_ms) {
      renew();
      next_renew_ms = now_ms + options_.lease_ttl_ms / 3;
    }
    if (now_ms >= next_sweep_ms) {
      sweep();
      report_cancel_requests();
      last_sweep_ms = now_ms;
      next_sweep_ms = now_ms + options_.poll_ms;
    }
    wait_for_wakeup(std::max<int64_t>(1, std::min(next_renew_ms, next_sweep_ms) - now_ms));
    // A notification brings the next sweep forward.
    if (thread_connection_ && PQconsumeInput(thread_connection_->raw()) == 1) {
      bool notified = false;
      while (PGnotify* notify = PQnotifies(thread_connection_->raw())) {
        notified = true;
        PQfreemem(notify);
      }
      // At most one sweep per kMinSweepGapMs however many notifications arrive
      // (every finished session sends one).
      if (notified) next_sweep_ms = std::min(next_sweep_ms, last_sweep_ms + kMinSweepGapMs);
    }
  }
}

void PostgresCluster::wait_for_wakeup(int64_t timeout_ms) {
  pollfd fds[2] = {{wake_pipe_[0], POLLIN, 0}, {-1, POLLIN, 0}};
  if (thread_connection_ && thread_connection_->healthy()) fds[1].fd = PQsocket(thread_connection_->raw());
  (void)::poll(fds, 2, static_cast<int>(std::min<int64_t>(timeout_ms, 60'000)));
  char drain[64];
  while (::read(wake_pipe_[0], drain, sizeof drain) > 0) {
  }
}

void PostgresCluster::renew() {
  std::map<SessionKey, int64_t> believed;
  int64_t started_ms = clock_.monotonic_us() / 1000;
  {
    std::lock_guard lock(held_mutex_);
    believed = held_;
  }
  static const std::string kHeartbeat = sql(
      "INSERT INTO nodes (node_id, address, started_at_ms, heartbeat_at_ms) VALUES ($1, $2, NOW_MS, NOW_MS) "
      "ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address, heartbeat_at_ms = EXCLUDED.heartbeat_at_ms");
  // Writers' fenced updates lock lease rows FOR SHARE, several per group
  // commit, in no particular order. A renewal that locked many rows in one
  // statement could deadlock with them (and, aborted twice, let leases
  // expire under a live node: then runs moved between nodes mid-step). So
  // the rows no writer holds are renewed together (SKIP LOCKED), and each of
  // the others alone: a statement holding one row lock cannot deadlock.
  static const std::string kRenewFree = sql(
      "UPDATE session_leases SET expires_at_ms = NOW_MS + $2 WHERE (tenant_id, session_id) IN "
      "(SELECT tenant_id, session_id FROM session_leases WHERE node_id = $1 AND expires_at_ms > NOW_MS "
      "FOR UPDATE SKIP LOCKED) RETURNING tenant_id, session_id, epoch");
  static const std::string kRenewOne = sql(
      "UPDATE session_leases SET expires_at_ms = NOW_MS + $2 WHERE node_id = $1 AND tenant_id = $3 "
      "AND session_id = $4 AND expires_at_ms > NOW_MS RETURNING epoch");
  (void)thread_connection_->exec(kHeartbeat, PgParams().add(options_.node_id).add(options_.address));
  forget_what_is_done();
  auto renewed = thread_connection_->exec(kRenewFree, PgParams().add(options_.node_id).add(options_.lease_ttl_ms));
  if (!renewed.is_ok()) {
    log::warn("cluster: cannot renew leases", {{"error", renewed.status().to_string()}});
    return;  // writes under leases that expire meanwhile are refused by the store
  }
  std::map<SessionKey, int64_t> live;
  for (int row = 0; row < renewed->rows(); ++row) {
    live[{renewed->text(row, 0), renewed->text(row, 1)}] = renewed->int64(row, 2);
  }
  for (const auto& [key, epoch] : believed) {
    if (live.count(key)) continue;
    auto one = thread_connection_->exec(
        kRenewOne, PgParams().add(options_.node_id).add(options_.lease_ttl_ms).add(key.first).add(key.second));
    if (!one.is_ok()) {
      log::warn("cluster: cannot renew leases", {{"error", one.status().to_string()}});
      return;
    }
    if (one->rows() == 1) live[key] = one->int64(0, 0);
  }
  // Lost leases leave held_ before the node is fresh again (holds()).
  std::vector<std::pair<SessionKey, int64_t>> lost;
  for (const auto& [key, epoch] : believed) {
    // Still ours (at this or a newer epoch of our own): held. Another node's
    // claim changes the holder, an expiry drops the row: lost.
    if (live.count(key)) continue;
    std::lock_guard lock(held_mutex_);
    auto held = held_.find(key);
    if (held == held_.end() || held->second != epoch) continue;  // released or re-acquired meanwhile
    held_.erase(held);
    lost.emplace_back(key, epoch);
  }
  renewed_at_ms_ = started_ms;  // every lease live now lives until the renewal's start + TTL
  for (const auto& [key, epoch] : lost) {
    log::warn("cluster: lease lost; stepping down", {{"session_id", key.second}, {"epoch", std::to_string(epoch)}});
    handlers_.on_lost(key.first, key.second);
  }
}

void PostgresCluster::forget_what_is_done() {
  // Cancel requests of runs that ended, and nodes silent for a day, are history.
  static const std::string kFinishedCancels =
      "DELETE FROM cancel_requests c USING runs r WHERE r.tenant_id = c.tenant_id AND r.id = c.run_id "
      "AND r.status IN ('completed', 'failed', 'cancelled')";
  static const std::string kSilentNodes = sql("DELETE FROM nodes WHERE heartbeat_at_ms < NOW_MS - 86400000");
  (void)thread_connection_->exec(kFinishedCancels, PgParams());
  (void)thread_connection_->exec(kSilentNodes, PgParams());
}

void PostgresCluster::sweep() {
  static const std::string kOrphans = sql(
      "SELECT DISTINCT r.tenant_id, r.session_id FROM runs r WHERE r.status IN ('queued', 'running', 'waiting') "
      "AND NOT EXISTS (SELECT 1 FROM session_leases l WHERE l.tenant_id = r.tenant_id "
      "AND l.session_id = r.session_id AND l.expires_at_ms > NOW_MS) LIMIT $1");
  auto orphans = thread_connection_->exec(kOrphans, PgParams().add(int64_t{options_.claims_per_sweep_max}));
  if (!orphans.is_ok()) {
    log::warn("cluster: cannot look for unowned work", {{"error", orphans.status().to_string()}});
    return;
  }
  for (int row = 0; row < orphans->rows() && !stopping_; ++row) {
    std::string tenant = orphans->text(row, 0), session = orphans->text(row, 1);
    auto epoch = claim_lease(*thread_connection_, options_, tenant, session, /*mine_too=*/false);
    if (!epoch.is_ok() || !*epoch) continue;  // another node was faster
    remember(tenant, session, **epoch);
    handlers_.on_claimed(tenant, session, **epoch);
  }
}

void PostgresCluster::report_cancel_requests() {
  static const std::string kCancels = sql(
      "SELECT c.tenant_id, c.run_id FROM cancel_requests c JOIN runs r ON r.tenant_id = c.tenant_id "
      "AND r.id = c.run_id JOIN session_leases l ON l.tenant_id = r.tenant_id AND l.session_id = r.session_id "
      "WHERE l.node_id = $1 AND l.expires_at_ms > NOW_MS AND r.status IN ('queued', 'running', 'waiting')");
  auto cancels = thread_connection_->exec(kCancels, PgParams().add(options_.node_id));
  if (!cancels.is_ok()) return;
  for (int row = 0; row < cancels->rows(); ++row) {
    handlers_.on_cancel_requested(cancels->text(row, 0), cancels->text(row, 1));
  }
}

}  // namespace continuum
