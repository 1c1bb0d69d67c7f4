// Ownership of sessions across the nodes that share one store.
//
// A node executes a session's runs only while it holds the session's lease.
// Every acquisition bumps the lease's epoch; every journal append of a run
// names the epoch it was made under and the store refuses it unless that
// epoch is current and unexpired (fencing), so a node that was paused or cut
// off can never write after its lease moved on.
//
// LocalCluster (one node, e.g. SQLite) grants everything with epoch 0 (no
// fencing). PostgresCluster (cluster/postgres_cluster.h) holds real leases.
//
// Thread safety: acquire/release/request_cancel/describe are called on the
// engine's loop thread. Handlers are invoked on the cluster's own thread; the
// engine posts them to its loop.
#pragma once

#include <functional>
#include <string>

#include "core/json.h"
#include "core/status.h"

namespace continuum {

struct ClusterHandlers {
  // This node now holds the session's lease (it had work and no live owner).
  std::function<void(const std::string& tenant, const std::string& session, int64_t epoch)> on_claimed;
  // This node's lease of the session expired or moved: stop executing there.
  std::function<void(const std::string& tenant, const std::string& session)> on_lost;
  // A cancel of a run in a session this node holds was requested elsewhere.
  std::function<void(const std::string& tenant, const std::string& run_id)> on_cancel_requested;
};

class Cluster {
 public:
  virtual ~Cluster() = default;
  // True when several nodes may share the store (leases are real).
  virtual bool shared() const = 0;
  virtual const std::string& node_id() const = 0;
  // The session's lease for this node: its fencing epoch (0 = unfenced), or
  // kConflict while another node holds a live lease.
  virtual Result<int64_t> acquire(const std::string& tenant, const std::string& session) = 0;
  // Gives the lease up (the session has nothing left to run here).
  virtual void release(const std::string& tenant, const std::string& session, int64_t epoch) = 0;
  // False when this node cannot be sure its leases are still live (its last
  // successful renewal is too old, e.g. after a pause): it must not start an
  // effect then, since another node may already own the session.
  virtual bool lease_fresh() const = 0;
  // Whether this node still believes it holds the session's lease. A renewal
  // drops the leases it lost before it makes the node fresh again, so an
  // effect checked with lease_fresh() && holds() never starts under a lease
  // another node has claimed (the engine hears of the loss asynchronously).
  virtual bool holds(const std::string& /*tenant*/, const std::string& /*session*/) const { return true; }
  // Records that a run executing on another node should be cancelled.
  virtual Status request_cancel(const std::string& tenant, const std::string& run_id) = 0;
  // The nodes and what they own, for GET /v1/cluster.
  virtual Result<json::object> describe() = 0;
  virtual void start(ClusterHandlers handlers) = 0;
  virtual void stop() = 0;
};

class LocalCluster final : public Cluster {
 public:
  bool shared() const override { return false; }
  const std::string& node_id() const override { return node_id_; }
  Result<int64_t> acquire(const std::string&, const std::string&) override { return int64_t{0}; }
  void release(const std::string&, const std::string&, int64_t) override {}
  bool lease_fresh() const override { return true; }
  Status request_cancel(const std::string&, const std::string&) override {
    return internal_error("a single node has no other node to cancel on");
  }
  Result<json::object> describe() override {
    return json::object{{"object", "cluster"}, {"shared", false}, {"this_node", node_id_},
                        {"nodes", json::array{json::object{{"id", node_id_}, {"alive", true}}}}};
  }
  void start(ClusterHandlers) override {}
  void stop() override {}

 private:
  std::string node_id_ = "local";
};

}  // namespace continuum
