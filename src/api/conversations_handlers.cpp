// The OpenAI-compatible Conversations API (docs/openai-sdk.md): a
// conversation is a session, its items are the session's items.
#include <algorithm>

#include "api/access.h"
#include "api/errors.h"
#include "api/handlers.h"
#include "api/openai_items.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;
constexpr int kItemsReadMax = 10'000;  // a conversation's newest items listed at most

json::object conversation_view(const SessionRecord& session) {
  json::value metadata = json::object{};
  if (auto parsed = parse_json(session.metadata_json); parsed.is_ok() && parsed->is_object()) metadata = *parsed;
  return json::object{{"id", session.id}, {"object", "conversation"}, {"created_at", session.created_at_ms / 1000},
                      {"metadata", std::move(metadata)}};
}

// Items added outside a run form one turn of their own.
void append_items(ApiContext& ctx, const SessionRecord& session, const std::vector<std::string>& messages,
                  WriteBatch& batch) {
  std::string turn = "items_" + ctx.random->hex(8);
  for (const auto& message : messages) {
    batch.items.push_back(ItemRecord{0, session.tenant_id, session.id, turn, message, ctx.clock->now_ms()});
  }
}

// Oldest first: the newest kItemsReadMax items of the conversation.
Result<std::vector<ItemRecord>> all_items(ApiContext& ctx, const SessionRecord& session) {
  ASSIGN_OR_RETURN(auto newest_first, ctx.store->recent_items(session.tenant_id, session.id, 0, kItemsReadMax));
  std::reverse(newest_first.begin(), newest_first.end());
  return newest_first;
}

json::array items_view(const std::vector<ItemRecord>& items) {
  json::array out;
  for (const auto& item : items) {
    for (auto& view : conversation_items(item)) out.push_back(std::move(view));
  }
  return out;
}

void create_conversation(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto body = parse_json_object(request.body.empty() ? "{}" : request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"items", "metadata"})) {
    return writer->send(error_response(invalid_argument("unknown parameter '" + *unknown + "'", *unknown)));
  }
  auto metadata = parse_metadata(*body, "metadata");
  if (!metadata.is_ok()) return writer->send(error_response(metadata.status()));
  std::vector<std::string> messages;
  if (const json::value* items = body->if_contains("items"); items && !items->is_null()) {
    auto parsed = parse_conversation_items(*items, "items");
    if (!parsed.is_ok()) return writer->send(error_response(parsed.status()));
    messages = std::move(*parsed);
  }
  const Principal& who = caller(request);
  if (!allowed(ctx, who, "session:create", "session:*", {{"owner", who.user_id}, {"agent", ""}}, writer)) return;
  // Not bound to an agent: each response names its agent (`model`).
  SessionRecord session{who.tenant, "sess_" + time_ordered_hex(ctx.clock->now_ms(), *ctx.random), "", to_json(*metadata), ctx.clock->now_ms(),
                        who.user_id};
  WriteBatch batch;
  batch.session_inserts.push_back(session);
  append_items(ctx, session, messages, batch);
  ctx.store->commit(std::move(batch), [&ctx, session, writer](Status result) {
    ctx.loop->post([session, writer, result] {
      if (!result.is_ok()) return writer->send(error_response(result));
      writer->send(json_response(200, conversation_view(session)));
    });
  });
}

void get_conversation(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:read", writer);
  if (!session) return;
  writer->send(json_response(200, conversation_view(*session)));
}

void update_conversation(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"metadata"})) {
    return writer->send(error_response(invalid_argument("unknown parameter '" + *unknown + "'", *unknown)));
  }
  auto metadata = parse_metadata(*body, "metadata");
  if (!metadata.is_ok()) return writer->send(error_response(metadata.status()));
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:update", writer);
  if (!session) return;
  session->metadata_json = to_json(*metadata);
  WriteBatch batch;
  batch.session_metadata_updates.push_back(*session);
  SessionRecord updated = *session;
  ctx.store->commit(std::move(batch), [&ctx, updated, writer](Status result) {
    ctx.loop->post([updated, writer, result] {
      if (!result.is_ok()) return writer->send(error_response(result));
      writer->send(json_response(200, conversation_view(updated)));
    });
  });
}

void delete_conversation(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:delete", writer);
  if (!session) return;
  delete_idle_session(ctx, caller(request), *session, "conversation", writer);
}

void list_conversation_items(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:read", writer);
  if (!session) return;
  auto items = all_items(ctx, *session);
  if (!items.is_ok()) return writer->send(error_response(items.status()));
  auto page = list_page(items_view(*items), request.query_param("after"), request.query_param("limit"),
                        request.query_param("order"));
  if (!page.is_ok()) return writer->send(error_response(page.status()));
  writer->send(json_response(200, *page));
}

void create_conversation_items(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"items"})) {
    return writer->send(error_response(invalid_argument("unknown parameter '" + *unknown + "'", *unknown)));
  }
  if (!body->contains("items")) return writer->send(error_response(invalid_argument("items is required", "items")));
  auto messages = parse_conversation_items(body->at("items"), "items");
  if (!messages.is_ok()) return writer->send(error_response(messages.status()));
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:update", writer);
  if (!session) return;
  WriteBatch batch;
  append_items(ctx, *session, *messages, batch);
  size_t added = messages->size();
  SessionRecord target = *session;
  ctx.store->commit(std::move(batch), [&ctx, target, added, writer](Status result) {
    ctx.loop->post([&ctx, target, added, writer, result] {
      if (!result.is_ok()) return writer->send(error_response(result));
      // The store assigned their seqs: they are the newest items.
      auto recent = ctx.store->recent_items(target.tenant_id, target.id, 0, static_cast<int>(added));
      if (!recent.is_ok()) return writer->send(error_response(recent.status()));
      std::reverse(recent->begin(), recent->end());
      json::array data = items_view(*recent);
      auto page = list_page(data, "", "100", "asc");
      writer->send(page.is_ok() ? json_response(200, *page) : error_response(page.status()));
    });
  });
}

// The item `item_<seq>` (or `item_<seq>_c<n>`, a function call of it).
Result<ItemRecord> find_item(ApiContext& ctx, const SessionRecord& session, const std::string& item_id) {
  std::string digits = item_id.rfind("item_", 0) == 0 ? item_id.substr(5, item_id.find("_c", 5) - 5) : "";
  char* end = nullptr;
  long long seq = std::strtoll(digits.c_str(), &end, 10);
  if (digits.empty() || *end != '\0' || seq < 1) return not_found("item '" + item_id + "' not found");
  ASSIGN_OR_RETURN(auto items, ctx.store->list_items(session.tenant_id, session.id, seq - 1, 1));
  if (items.empty() || items.front().seq != seq) return not_found("item '" + item_id + "' not found");
  return items.front();
}

void get_conversation_item(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:read", writer);
  if (!session) return;
  auto item = find_item(ctx, *session, params.at("item"));
  if (!item.is_ok()) return writer->send(error_response(item.status()));
  for (auto& view : conversation_items(*item)) {
    if (view.as_object().at("id").as_string() == params.at("item")) return writer->send(json_response(200, view));
  }
  writer->send(error_response(not_found("item '" + params.at("item") + "' not found")));
}

void delete_conversation_item(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:update", writer);
  if (!session) return;
  auto item = find_item(ctx, *session, params.at("item"));
  if (!item.is_ok()) return writer->send(error_response(item.status()));
  WriteBatch batch;
  batch.item_deletes.push_back(*item);
  SessionRecord target = *session;
  ctx.store->commit(std::move(batch), [&ctx, target, writer](Status result) {
    ctx.loop->post([target, writer, result] {
      if (!result.is_ok()) return writer->send(error_response(result));
      writer->send(json_response(200, conversation_view(target)));
    });
  });
}

}  // namespace

void add_conversation_routes(Router& router, ApiContext& ctx) {
  router.add("POST", "/v1/conversations",
             [&ctx](HttpRequest& r, const PathParams&, Writer w) { create_conversation(ctx, r, w); });
  router.add("GET", "/v1/conversations/{id}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { get_conversation(ctx, r, p, w); });
  router.add("POST", "/v1/conversations/{id}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { update_conversation(ctx, r, p, w); });
  router.add("DELETE", "/v1/conversations/{id}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { delete_conversation(ctx, r, p, w); });
  router.add("GET", "/v1/conversations/{id}/items",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { list_conversation_items(ctx, r, p, w); });
  router.add("POST", "/v1/conversations/{id}/items",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { create_conversation_items(ctx, r, p, w); });
  router.add("GET", "/v1/conversations/{id}/items/{item}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { get_conversation_item(ctx, r, p, w); });
  router.add("DELETE", "/v1/conversations/{id}/items/{item}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { delete_conversation_item(ctx, r, p, w); });
}

}  // namespace continuum
