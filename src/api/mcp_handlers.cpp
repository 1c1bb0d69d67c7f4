// MCP administration (docs/mcp.md): the servers the tenant's agents
// configure, what a server offers now with each tool's pin, and re-approval of
// a tool whose definition changed.
//
//   GET  /v1/mcp/servers                                  mcp:read on mcp:*
//   GET  /v1/mcp/servers/{server}/tools[?agent=NAME]      mcp:read on mcp:<server>
//   GET  /v1/mcp/pins[?server=NAME]                       mcp:read on mcp:*
//   POST /v1/mcp/servers/{server}/tools/{tool}/approve    mcp:approve on mcp:<server>/<tool>
//        {"hash": <the pin's seen_hash, as reviewed>}
#include "api/access.h"
#include "api/errors.h"
#include "api/handlers.h"
#include "api/mcp_servers.h"
#include "tools/mcp/mcp_hub.h"
#include "tools/mcp/tool_pins.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;

// The latest version of each of the tenant's agents that configures MCP servers.
Result<std::vector<std::shared_ptr<const AgentSpec>>> agents_with_mcp(ApiContext& ctx, const std::string& tenant) {
  ASSIGN_OR_RETURN(auto records, ctx.store->list_agents(tenant));
  std::vector<std::shared_ptr<const AgentSpec>> agents;
  for (const auto& record : records) {
    auto object = parse_json_object(record.spec_json);
    if (!object.is_ok()) continue;
    auto spec = parse_agent_spec(*object);
    if (spec.is_ok() && spec->has_mcp_servers()) agents.push_back(std::make_shared<const AgentSpec>(std::move(*spec)));
  }
  return agents;
}

}  // namespace

Result<ConfiguredServer> find_mcp_server(ApiContext& ctx, const std::string& tenant, const std::string& name,
                                         const std::string& agent_name) {
  ASSIGN_OR_RETURN(auto agents, agents_with_mcp(ctx, tenant));
  for (const auto& agent : agents) {
    if (!agent_name.empty() && agent->name != agent_name) continue;
    const ToolSpec* server = agent->find_tool(name);
    if (server != nullptr && server->mcp) return ConfiguredServer{agent, server};
  }
  return not_found("no agent" + (agent_name.empty() ? std::string() : " '" + agent_name + "'") +
                   " configures an MCP server named '" + name + "'");
}

namespace {

json::object server_view(const ToolSpec& server) {
  json::object view{{"name", server.name}, {"transport", server.mcp->transport}};
  if (server.mcp->transport == "stdio") view["command"] = server.mcp->command;
  else view["url"] = server.mcp->url;
  return view;
}

void list_servers(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const Principal& who = caller(request);
  if (!allowed(ctx, who, "mcp:read", "mcp:*", {}, writer)) return;
  auto agents = agents_with_mcp(ctx, who.tenant);
  if (!agents.is_ok()) return writer->send(error_response(agents.status()));
  std::map<std::string, json::object> servers;
  for (const auto& agent : *agents) {
    for (const auto& tool : agent->tools) {
      if (!tool.mcp) continue;
      auto [entry, added] = servers.try_emplace(tool.name, server_view(tool));
      if (added) entry->second["agents"] = json::array{};
      entry->second["agents"].as_array().push_back(json::value(agent->name));
    }
  }
  json::array data;
  for (auto& [name, view] : servers) data.push_back(std::move(view));
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)}}));
}

json::object tool_view(const ConfiguredServer& configured, const McpTool& tool,
                       const std::map<std::string, McpToolPinRecord>& pins) {
  json::object view{{"name", tool.name},
                    {"model_name", mcp_model_tool_name(configured.server->name, tool.name)},
                    {"title", tool.title},
                    {"description", tool.description},
                    {"input_schema", tool.input_schema},
                    {"allowed", mcp_tool_allowed(configured.server->mcp->allowed_tools, tool.name)},
                    {"definition_hash", tool.definition_hash}};
  auto pin = pins.find(tool.name);
  if (pin == pins.end()) {
    view["pin"] = json::object{{"status", "unpinned"}};
  } else {
    json::object pin_view = mcp_pin_to_json(pin->second);
    // What a run would decide now, even before a run has seen this listing.
    pin_view["status"] = pin->second.approved_hash == tool.definition_hash ? kMcpPinApproved : kMcpPinChanged;
    view["pin"] = std::move(pin_view);
  }
  return view;
}

void list_server_tools(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const Principal& who = caller(request);
  const std::string& name = params.at("server");
  if (!allowed(ctx, who, "mcp:read", "mcp:" + name, {}, writer)) return;
  auto configured = find_mcp_server(ctx, who.tenant, name, request.query_param("agent"));
  if (!configured.is_ok()) return writer->send(error_response(configured.status()));
  std::string tenant = who.tenant;
  ctx.mcp->list_tools(tenant, *configured->server,
                      [&ctx, tenant, configured = *configured, writer](Result<McpToolList> tools) {
                        if (!tools.is_ok()) {
                          return writer->send(error_response(
                              Status(is_authorization_required(tools.status()) ? Code::kConflict : Code::kUnavailable,
                                     "MCP server '" + configured.server->name +
                                                             "' cannot list its tools: " + tools.status().message())));
                        }
                        auto stored = ctx.store->list_mcp_tool_pins(tenant, configured.server->name);
                        if (!stored.is_ok()) return writer->send(error_response(stored.status()));
                        std::map<std::string, McpToolPinRecord> pins;
                        for (auto& pin : *stored) pins[pin.tool] = std::move(pin);
                        json::array data;
                        for (const McpTool& tool : **tools) data.push_back(tool_view(configured, tool, pins));
                        json::object body = server_view(*configured.server);
                        body["object"] = "list";
                        body["agent"] = configured.agent->name;
                        body["data"] = std::move(data);
                        writer->send(json_response(200, body));
                      });
}

void list_pins(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const Principal& who = caller(request);
  if (!allowed(ctx, who, "mcp:read", "mcp:*", {}, writer)) return;
  auto pins = ctx.store->list_mcp_tool_pins(who.tenant, request.query_param("server"));
  if (!pins.is_ok()) return writer->send(error_response(pins.status()));
  json::array data;
  for (const auto& pin : *pins) data.push_back(mcp_pin_to_json(pin));
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)}}));
}

void approve_tool(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const Principal& who = caller(request);
  const std::string& server = params.at("server");
  const std::string& tool = params.at("tool");
  if (!allowed(ctx, who, "mcp:approve", "mcp:" + server + "/" + tool, {}, writer)) return;
  auto body = parse_json_object(request.body.empty() ? "{}" : request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"hash"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto hash = get_string(*body, "hash", "hash");  // the seen_hash the approver reviewed
  if (!hash.is_ok()) return writer->send(error_response(hash.status()));
  ctx.mcp_pins->approve(who.tenant, server, tool, *hash, who.label(), [writer](Result<McpToolPinRecord> pin) {
    if (!pin.is_ok()) return writer->send(error_response(pin.status()));
    writer->send(json_response(200, mcp_pin_to_json(*pin)));
  });
}

}  // namespace

void add_mcp_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/mcp/servers", [&ctx](HttpRequest& r, const PathParams&, Writer w) { list_servers(ctx, r, w); });
  router.add("GET", "/v1/mcp/servers/{server}/tools",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { list_server_tools(ctx, r, p, w); });
  router.add("GET", "/v1/mcp/pins", [&ctx](HttpRequest& r, const PathParams&, Writer w) { list_pins(ctx, r, w); });
  router.add("POST", "/v1/mcp/servers/{server}/tools/{tool}/approve",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { approve_tool(ctx, r, p, w); });
}

}  // namespace continuum
