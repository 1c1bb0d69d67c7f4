// POST /v1/policy/test: evaluates a hypothetical request and explains the
// decision (the API behind `continuum policy test`). Nothing is executed.
//
// Body: {action, resource, user?, roles?, agent?, args?, resource_fields?,
// history?, document?}. Without `user` the request is the caller's own.
// `history` stands in for past tool calls: {"refund": {"count": 2,
// "sum": {"amount": 1200}}} (the window is not simulated). `document` tests
// an unsaved policy instead of the one in force.
#include "api/access.h"
#include "api/errors.h"
#include "api/handlers.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;

// Past calls as the test request describes them.
class DescribedHistory final : public policy::History {
 public:
  explicit DescribedHistory(json::object described) : described_(std::move(described)) {}
  Result<int64_t> count_calls(const std::string& tool, int64_t) override {
    const json::value* count = find(tool, "count");
    return count && count->is_int64() ? count->as_int64() : int64_t{0};
  }
  Result<double> sum_argument(const std::string& tool, const std::string& arg_path, int64_t) override {
    const json::value* sums = find(tool, "sum");
    if (!sums || !sums->is_object()) return 0.0;
    auto found = sums->as_object().find(arg_path);
    if (found == sums->as_object().end() || !found->value().is_number()) return 0.0;
    return found->value().to_number<double>();
  }

 private:
  const json::value* find(const std::string& tool, const char* field) const {
    auto entry = described_.find(tool);
    if (entry == described_.end() || !entry->value().is_object()) return nullptr;
    auto value = entry->value().as_object().find(field);
    return value == entry->value().as_object().end() ? nullptr : &value->value();
  }
  json::object described_;
};

Result<policy::Request> request_from(const Principal& who, const json::object& body) {
  policy::Request request;
  ASSIGN_OR_RETURN(request.action, get_string(body, "action", "action"));
  ASSIGN_OR_RETURN(request.resource, get_string(body, "resource", "resource"));
  ASSIGN_OR_RETURN(auto user, get_optional_string(body, "user", "user"));
  ASSIGN_OR_RETURN(auto roles, get_optional_array(body, "roles", "roles"));
  ASSIGN_OR_RETURN(auto agent, get_optional_string(body, "agent", "agent"));
  ASSIGN_OR_RETURN(auto args, get_optional_object(body, "args", "args"));
  ASSIGN_OR_RETURN(auto fields, get_optional_object(body, "resource_fields", "resource_fields"));
  Principal subject{who.tenant, user.value_or(who.user_id), {}, "policy-test"};
  if (roles) {
    for (const auto& role : *roles) {
      if (!role.is_string()) return invalid_argument("roles must be strings", "roles");
      subject.roles.emplace_back(role.as_string());
    }
  } else if (!user) {
    subject.roles = who.roles;
  }
  request.identities = subject.identities();
  json::object resource = fields ? *fields : json::object{};
  size_t colon = request.resource.find(':');
  resource["type"] = request.resource.substr(0, colon);
  resource["id"] = colon == std::string::npos ? "" : request.resource.substr(colon + 1);
  request.context = api_request_context(subject, std::move(resource));
  request.context["action"] = request.action;
  if (agent) {
    request.identities.push_back("agent:" + *agent);
    request.context["agent"] = json::object{{"name", *agent}};
  }
  if (args) request.context["args"] = *args;
  return request;
}

void test_policy(ApiContext& ctx, HttpRequest& http, Writer writer) {
  const Principal& who = caller(http);
  auto body = parse_json_object(http.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"action", "resource", "user", "roles", "agent", "args",
                                              "resource_fields", "history", "document"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto request = request_from(who, *body);
  if (!request.is_ok()) return writer->send(error_response(request.status()));
  auto history_given = get_optional_object(*body, "history", "history");
  if (!history_given.is_ok()) return writer->send(error_response(history_given.status()));
  DescribedHistory history(*history_given ? **history_given : json::object{});
  request->history = &history;
  json::value version = nullptr;
  std::shared_ptr<const policy::PolicyDocument> document;
  if (body->contains("document")) {
    const json::value& given = body->at("document");
    auto parsed = policy::PolicyDocument::parse(given.is_string() ? std::string(given.as_string()) : to_json(given));
    if (!parsed.is_ok()) return writer->send(error_response(parsed.status()));
    document = std::make_shared<const policy::PolicyDocument>(std::move(*parsed));
  } else {
    auto in_force = ctx.authorizer->policy_in_force(who.tenant);
    if (!in_force.is_ok()) return writer->send(error_response(in_force.status()));
    document = in_force->document;
    version = in_force->version;
  }
  policy::Decision decision = policy::evaluate(*document, *request);
  json::array trace;
  for (const auto& line : decision.trace) trace.push_back(json::value(line));
  writer->send(json_response(
      200, json::object{{"object", "policy_decision"},
                        {"decision", policy::effect_name(decision.effect)},
                        {"statement", decision.statement_id.empty() ? json::value(nullptr)
                                                                    : json::value(decision.statement_id)},
                        {"reason", decision.reason},
                        {"trace", std::move(trace)},
                        {"policy_version", version}}));
}

}  // namespace

void add_policy_test_route(Router& router, ApiContext& ctx) {
  router.add("POST", "/v1/policy/test",
             guarded(ctx, "policy:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) { test_policy(ctx, r, w); }));
}

}  // namespace continuum
