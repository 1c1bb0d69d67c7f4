#include "cli/mcp_commands.h"

#include <iostream>

#include "cli/commands.h"

namespace continuum::cli {

namespace {

std::string text_of(const json::object& obj, std::string_view key) {
  const json::value* value = obj.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : "";
}

std::string first_line(const std::string& text, size_t width) {
  std::string line = text.substr(0, text.find('\n'));
  return line.size() > width ? line.substr(0, width - 3) + "..." : line;
}

const json::object& object_or_empty(const json::value* value) {
  static const json::object kEmpty;
  return value != nullptr && value->is_object() ? value->get_object() : kEmpty;
}

// One line per tool: its name, whether agents may use it, its pin, what it says it does.
int print_tools(const Result<json::value>& listing) {
  if (!listing.is_ok()) return fail(listing.status());
  const json::object& body = object_or_empty(&*listing);
  std::cout << "MCP server " << text_of(body, "name") << " (" << text_of(body, "transport") << ", as configured by agent "
            << text_of(body, "agent") << ")\n";
  const json::value* data = body.if_contains("data");
  if (data == nullptr || !data->is_array()) return fail(Status(Code::kInternal, "the server's answer has no tool list"));
  for (const auto& entry : data->get_array()) {
    const json::object& tool = object_or_empty(&entry);
    const json::value* allowed = tool.if_contains("allowed");
    const json::object& pin = object_or_empty(tool.if_contains("pin"));
    std::string status = text_of(pin, "status");
    if (status == "changed") status += ", approve the new definition with --hash " + text_of(tool, "definition_hash");
    std::cout << "  " << text_of(tool, "name") << "  [" << (allowed && allowed->is_bool() && allowed->get_bool() ? "allowed" : "not allowed")
              << ", " << status << "]  as " << text_of(tool, "model_name") << "\n      "
              << first_line(text_of(tool, "description"), 100) << "\n";
  }
  return 0;
}

// Prints the URL a person opens to authorize the server (or, for a
// client_credentials server, that it has a token now).
int print_authorization(const Result<json::value>& answer) {
  if (!answer.is_ok()) return fail(answer.status());
  const json::object& body = object_or_empty(&*answer);
  std::string url = text_of(body, "authorization_url");
  if (url.empty()) return print_result(answer);
  std::cout << "Open this URL in a browser within 10 minutes and approve access";
  if (!text_of(body, "scope").empty()) std::cout << " (scope: " << text_of(body, "scope") << ")";
  std::cout << ":\n\n  " << url << "\n\nThe authorization server sends you back to " << text_of(body, "redirect_uri")
            << ".\n";
  return 0;
}

std::string agent_query(const std::string& agent) { return agent.empty() ? "" : "?agent=" + agent; }

}  // namespace

McpCommands::McpCommands(CLI::App& app) {
  auto* mcp = app.add_subcommand("mcp", "MCP servers: what they offer, tool pins and their approval");
  mcp->require_subcommand(1);
  servers_ = mcp->add_subcommand("servers", "List the MCP servers the tenant's agents configure");
  tools_ = mcp->add_subcommand("tools", "List what a configured MCP server offers now, with each tool's pin");
  tools_->add_option("server", server_, "The server's name in the agents' tools")->required();
  tools_->add_option("--agent", agent_, "Use this agent's configuration of the server");
  tools_->add_flag("--json", json_, "Print the API's JSON");
  pins_ = mcp->add_subcommand("pins", "List tool pins (approved definitions; changed ones are withheld)");
  pins_->add_option("server", server_, "Only this server's pins");
  approve_ = mcp->add_subcommand("approve", "Approve the definition a server now serves for a changed tool");
  approve_->add_option("server", server_)->required();
  approve_->add_option("tool", tool_)->required();
  approve_->add_option("--hash", hash_, "The definition you reviewed: its hash (seen_hash) from `mcp pins` or `mcp tools`")
      ->required();
  authorize_ = mcp->add_subcommand("authorize", "Authorize Continuum at an OAuth-protected MCP server (prints the URL to open)");
  authorize_->add_option("server", server_)->required();
  authorize_->add_option("--agent", agent_, "Use this agent's configuration of the server");
  authorization_ = mcp->add_subcommand("authorization", "Show an OAuth-protected MCP server's authorization (no tokens)");
  authorization_->add_option("server", server_)->required();
  authorization_->add_option("--agent", agent_, "Use this agent's configuration of the server");
  authorization_->add_flag("--forget", forget_, "Delete its tokens and client registration");
}

std::optional<int> McpCommands::run(ApiClient& client) const {
  if (servers_->parsed()) return print_result(client.call("GET", "/v1/mcp/servers"));
  if (tools_->parsed()) {
    std::string path = "/v1/mcp/servers/" + server_ + "/tools" + (agent_.empty() ? "" : "?agent=" + agent_);
    auto listing = client.call("GET", path);
    return json_ ? print_result(listing) : print_tools(listing);
  }
  if (pins_->parsed()) return print_result(client.call("GET", "/v1/mcp/pins" + (server_.empty() ? "" : "?server=" + server_)));
  if (approve_->parsed()) {
    return print_result(client.call("POST", "/v1/mcp/servers/" + server_ + "/tools/" + tool_ + "/approve",
                                    json::serialize(json::object{{"hash", hash_}})));
  }
  if (authorize_->parsed()) {
    json::object body;
    if (!agent_.empty()) body["agent"] = agent_;
    return print_authorization(client.call("POST", "/v1/mcp/servers/" + server_ + "/authorize", json::serialize(body)));
  }
  if (authorization_->parsed()) {
    return print_result(client.call(forget_ ? "DELETE" : "GET",
                                    "/v1/mcp/servers/" + server_ + "/authorization" + agent_query(agent_)));
  }
  return std::nullopt;
}

}  // namespace continuum::cli
