// GET /v1/runs/{id}/events: Server-Sent Events of a run, resumable.
//
// Replay then live: the committed steps after Last-Event-ID are read from the
// store and written synchronously, then the stream subscribes to the engine.
// Both happen in one loop turn, so no event can fall between them.
#include "api/errors.h"
#include "api/access.h"
#include "api/handlers.h"

#include <set>

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;
constexpr int kReplayPage = 1000;

std::string sse_frame(int64_t seq, const std::string& type, const std::string& data) {
  std::string frame;
  if (seq >= 0) frame += "id: " + std::to_string(seq) + "\n";
  frame += "event: " + type + "\ndata: " + data + "\n\n";
  return frame;
}

Result<int64_t> resume_after(const HttpRequest& request) {
  std::string text = request.header("Last-Event-ID");
  if (text.empty()) text = request.query_param("after");
  if (text.empty()) return int64_t{-1};
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || value < -1) return invalid_argument("Last-Event-ID must be a step seq", "Last-Event-ID");
  return static_cast<int64_t>(value);
}

// Where a stream is: the last step sent in order, and the approval requests
// announced ahead of it.
struct StreamPosition {
  int64_t last_seq = -1;
  std::set<int64_t> announced;
};

// An approval_requested step lies beyond the gap of the call it holds (the
// call's result takes the lower, reserved seq): it is announced at once,
// without an id (like text deltas), and sent again in order, with its id,
// once the gap is filled.
void announce_approvals(const std::vector<StepRecord>& steps, size_t from, StreamPosition& position,
                        ResponseWriter& writer) {
  for (size_t i = from; i < steps.size(); ++i) {
    if (steps[i].kind != kStepApprovalRequested || !position.announced.insert(steps[i].seq).second) continue;
    writer.write(sse_frame(-1, steps[i].kind, step_to_json_text(steps[i])));
  }
}

// Writes stored steps after position.last_seq, in seq order, and advances it.
// Parallel tool results may commit out of seq order: while the run is not
// terminal, writing stops at the first gap, so a client resuming with
// Last-Event-ID never skips a step that commits later. Returns true if the
// terminal step was written.
Result<bool> write_steps(ApiContext& ctx, const std::string& tenant, const std::string& run_id, bool run_terminal,
                         StreamPosition& position, ResponseWriter& writer) {
  int64_t* last_seq = &position.last_seq;
  for (;;) {
    ASSIGN_OR_RETURN(auto steps, ctx.store->list_steps(tenant, run_id, *last_seq, kReplayPage));
    for (size_t i = 0; i < steps.size(); ++i) {
      const StepRecord& step = steps[i];
      if (!run_terminal && step.seq != *last_seq + 1) {
        announce_approvals(steps, i, position, writer);
        return false;
      }
      writer.write(sse_frame(step.seq, step.kind, step_to_json_text(step)));
      *last_seq = step.seq;
      if (step.kind == kStepRunCompleted || step.kind == kStepRunFailed || step.kind == kStepRunCancelled) {
        return true;
      }
    }
    if (static_cast<int>(steps.size()) < kReplayPage) return false;
  }
}

void stream_events(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto after = resume_after(request);
  if (!after.is_ok()) return writer->send(error_response(after.status()));
  auto run = authorized_run(ctx, caller(request), params.at("id"), "run:read", writer);
  if (!run) return;
  std::string tenant = run->tenant_id;
  writer->start_stream(200, "text/event-stream", {{"X-Accel-Buffering", "no"}});
  auto position = std::make_shared<StreamPosition>();
  position->last_seq = *after;
  auto ended = write_steps(ctx, tenant, run->id, is_terminal_status(run->status), *position, *writer);
  if (!ended.is_ok() || *ended || is_terminal_status(run->status)) return writer->end();
  std::weak_ptr<ResponseWriter> weak = writer;
  std::string run_id = run->id;
  // A model reply streaming right now: send what was streamed before this
  // client came, as one delta; later deltas follow live.
  if (auto partial = ctx.engine->partial_text(run_id)) writer->write(sse_frame(-1, partial->type, partial->data));
  // Live events wake the stream; committed steps are then read back from the
  // store in order (cheap, indexed), so nothing published before this
  // subscription, or out of seq order, is missed or duplicated.
  int64_t token = ctx.engine->subscribe(run_id, [&ctx, weak, position, tenant, run_id](const RunEvent& event) {
    auto live = weak.lock();
    if (!live || live->closed()) return;
    if (event.seq < 0) {
      live->write(sse_frame(-1, event.type, event.data));
    } else {
      auto done = write_steps(ctx, tenant, run_id, event.terminal, *position, *live);
      if (!done.is_ok() || *done) return live->end();
    }
    // A reader this far behind is cut off; it resumes with Last-Event-ID.
    if (live->queued_bytes() > ctx.sse_queued_bytes_max) live->end();
  });
  ctx.engine->follow_remote(tenant, run_id);  // it may execute on another node
  Engine* engine = ctx.engine;
  int64_t hook = ctx.add_shutdown_hook([weak] {
    if (auto live = weak.lock()) live->end();  // the client resumes with Last-Event-ID
  });
  writer->on_close([&ctx, engine, run_id, token, hook] {
    engine->unsubscribe(run_id, token);
    ctx.remove_shutdown_hook(hook);
  });
  keep_sse_alive(ctx, weak);
}

}  // namespace

void keep_sse_alive(ApiContext& ctx, std::weak_ptr<ResponseWriter> weak) {
  ctx.loop->post_after(ctx.sse_keepalive_ms, [&ctx, weak] {
    auto writer = weak.lock();
    if (!writer || writer->closed()) return;
    writer->write(": keep-alive\n\n");
    keep_sse_alive(ctx, weak);
  });
}

void add_event_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/runs/{id}/events",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { stream_events(ctx, r, p, w); });
}

}  // namespace continuum
