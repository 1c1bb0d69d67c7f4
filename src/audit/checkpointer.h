// Signs checkpoints of the audit chains: for every tenant whose chain grew
// since its last checkpoint, a signed (seq, hash) at the head. Run on a
// timer and once at shutdown. Thread-compatible: one caller at a time.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "crypto/signing.h"
#include "store/store.h"

namespace continuum {

class AuditCheckpointer {
 public:
  // `key` and `store` must outlive this.
  AuditCheckpointer(Store& store, const Ed25519Key& key, const Clock& clock) : store_(store), key_(key), clock_(clock) {}

  // Commits what is due; `wait` blocks until durable (for shutdown).
  Status checkpoint(bool wait);

 private:
  // The checkpoints due now, signed; empty when every head is covered.
  Result<WriteBatch> due_checkpoints();
  void remember(const WriteBatch& batch);

  Store& store_;
  const Ed25519Key& key_;
  const Clock& clock_;
  std::mutex mutex_;
  std::map<std::string, int64_t> covered_seq_;  // GUARDED_BY(mutex_): newest checkpointed seq per tenant
};

}  // namespace continuum
