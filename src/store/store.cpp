#include "store/store.h"

#include <future>

namespace continuum {

bool is_terminal_status(const std::string& status) {
  return status == kRunCompleted || status == kRunFailed || status == kRunCancelled;
}

void Store::commit_many(std::vector<CommitRequest> requests, CommitPacing) {
  for (auto& request : requests) commit(std::move(request.batch), std::move(request.done));
}

Status Store::commit_and_wait(WriteBatch batch) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  commit(std::move(batch), [&promise](Status status) { promise.set_value(std::move(status)); });
  return future.get();
}

}  // namespace continuum
