#include "audit/checkpointer.h"

#include "audit/chain.h"
#include "core/log.h"

namespace continuum {

Result<WriteBatch> AuditCheckpointer::due_checkpoints() {
  ASSIGN_OR_RETURN(auto heads, store_.list_audit_heads());
  WriteBatch batch;
  int64_t now = clock_.now_ms();
  std::lock_guard lock(mutex_);
  for (const auto& head : heads) {
    if (covered_seq_[head.tenant_id] >= head.seq) continue;
    AuditCheckpointRecord checkpoint{head.tenant_id, head.seq, head.hash, now, key_.key_id(), key_.public_key(), ""};
    ASSIGN_OR_RETURN(checkpoint.signature,
                     key_.sign(audit_checkpoint_message(head.tenant_id, head.seq, head.hash, now)));
    batch.audit_checkpoints.push_back(std::move(checkpoint));
  }
  return batch;
}

void AuditCheckpointer::remember(const WriteBatch& batch) {
  std::lock_guard lock(mutex_);
  for (const auto& checkpoint : batch.audit_checkpoints) {
    covered_seq_[checkpoint.tenant_id] = std::max(covered_seq_[checkpoint.tenant_id], checkpoint.seq);
  }
}

Status AuditCheckpointer::checkpoint(bool wait) {
  ASSIGN_OR_RETURN(auto batch, due_checkpoints());
  if (batch.empty()) return Status::ok();
  WriteBatch signed_copy = batch;
  if (wait) {
    // Another node may have checkpointed the same head: that is a conflict, and fine.
    Status status = store_.commit_and_wait(std::move(batch));
    if (status.is_ok() || status.code() == Code::kConflict) remember(signed_copy);
    return status.code() == Code::kConflict ? Status::ok() : status;
  }
  store_.commit(std::move(batch), [this, signed_copy = std::move(signed_copy)](Status status) {
    if (status.is_ok() || status.code() == Code::kConflict) {
      remember(signed_copy);
    } else {
      log::error("cannot write audit checkpoints", {{"error", status.to_string()}});
    }
  });
  return Status::ok();
}

}  // namespace continuum
