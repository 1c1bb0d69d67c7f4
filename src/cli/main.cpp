// The `continuum` command: the server and a client for its API.
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>

#include "api/server_app.h"
#include "cli/commands.h"
#include "cli/governance_commands.h"
#include "cli/mcp_commands.h"
#include "core/process.h"
#include "core/log.h"

using namespace continuum;

namespace {

// The client only reads the key the server wrote; it never creates one.
std::string read_api_key_file(const std::string& data_dir) {
  std::ifstream file(data_dir + "/api-key");
  std::string key;
  std::getline(file, key);
  return key;
}

cli::ClientOptions client_options(const std::string& server, const std::string& api_key, const std::string& data) {
  cli::ClientOptions options;
  options.server_url = server;
  options.api_key = api_key;
  if (options.api_key.empty()) options.api_key = read_api_key_file(data);
  while (!options.server_url.empty() && options.server_url.back() == '/') options.server_url.pop_back();
  return options;
}

std::string env_or(const char* name, const std::string& fallback) {
  std::string value = read_process_env(name);
  return value.empty() ? fallback : value;
}

struct ServeFlags {
  std::string config_file, data, store, listen;
};

int serve(const ServeFlags& flags) {
  ServerConfig config;
  std::string file = flags.config_file.empty() ? read_process_env("CONTINUUM_CONFIG") : flags.config_file;
  Status status = file.empty() ? Status::ok() : apply_config_file(file, config);
  if (status.is_ok()) status = apply_config_env(read_process_env, config);
  if (!status.is_ok()) {
    std::cerr << "configuration error: " << status.message() << "\n";
    return 2;
  }
  if (!flags.data.empty()) config.data_dir = flags.data;
  if (!flags.store.empty()) config.store = flags.store;
  if (!flags.listen.empty()) config.listen = flags.listen;
  status = validate_config(config);
  if (!status.is_ok()) {
    std::cerr << "configuration error: " << status.message() << "\n";
    return 2;
  }
  log::Level level;
  if (log::parse_level(config.log_level, &level)) log::set_level(level);
  return run_server(config);
}

}  // namespace

int main(int argc, char** argv) {
  continuum::tune_process_resources();
  CLI::App app{"continuum: a durable runtime for AI agents"};
  app.require_subcommand(1);
  std::string server = env_or("CONTINUUM_URL", "http://127.0.0.1:8080");
  std::string api_key = read_process_env("CONTINUUM_API_KEY");
  std::string data = env_or("CONTINUUM_DATA_DIR", "./continuum-data");
  app.add_option("--server", server, "Server URL (CONTINUUM_URL)");
  app.add_option("--api-key", api_key, "API key (CONTINUUM_API_KEY; default: <data>/api-key)");
  app.add_option("--data", data, "Data directory holding the api-key file (CONTINUUM_DATA_DIR)");
  app.fallthrough();  // global options may follow the subcommand

  auto* serve_cmd = app.add_subcommand("serve", "Run the server");
  ServeFlags serve_flags;
  serve_cmd->add_option("--config", serve_flags.config_file, "YAML config file (CONTINUUM_CONFIG)");
  serve_cmd->add_option("--data", serve_flags.data, "Data directory (CONTINUUM_DATA_DIR)");
  serve_cmd->add_option("--store", serve_flags.store,
                        "sqlite:PATH (default: <data>/continuum.db) or postgres://... (CONTINUUM_STORE)");
  serve_cmd->fallthrough(false);
  serve_cmd->add_option("--listen", serve_flags.listen, "HOST:PORT (CONTINUUM_LISTEN)");

  auto* agent_cmd = app.add_subcommand("agent", "Define and inspect agents");
  agent_cmd->require_subcommand(1);
  std::string agent_file, agent_name;
  auto* apply_cmd = agent_cmd->add_subcommand("apply", "Create or update an agent from a YAML/JSON file");
  apply_cmd->add_option("-f,--file", agent_file, "Agent definition file")->required();
  auto* list_cmd = agent_cmd->add_subcommand("list", "List agents");
  auto* show_cmd = agent_cmd->add_subcommand("show", "Show an agent");
  show_cmd->add_option("name", agent_name)->required();

  auto* chat_cmd = app.add_subcommand("chat", "Chat with an agent (continues a session with --session)");
  std::string chat_agent, chat_session;
  chat_cmd->add_option("agent", chat_agent)->required();
  chat_cmd->add_option("--session", chat_session, "Session id to continue");

  auto* run_cmd = app.add_subcommand("run", "Inspect runs");
  run_cmd->require_subcommand(1);
  std::string run_id;
  auto* run_show_cmd = run_cmd->add_subcommand("show", "Show a run");
  run_show_cmd->add_option("id", run_id)->required();
  auto* run_steps_cmd = run_cmd->add_subcommand("steps", "Show a run's journal");
  run_steps_cmd->add_option("id", run_id)->required();

  auto* secrets_cmd = app.add_subcommand("secrets", "The vault of tool credentials (values are write-only)");
  secrets_cmd->require_subcommand(1);
  std::string secret_name;
  auto* secrets_set_cmd = secrets_cmd->add_subcommand("set", "Create or replace a secret; the value is read from stdin");
  secrets_set_cmd->add_option("name", secret_name)->required();
  auto* secrets_list_cmd = secrets_cmd->add_subcommand("list", "List secret names (never values)");
  auto* secrets_delete_cmd = secrets_cmd->add_subcommand("delete", "Delete a secret");
  secrets_delete_cmd->add_option("name", secret_name)->required();

  auto* keys_cmd = app.add_subcommand("keys", "Encryption keys: list, rotate, shred; add a key-encryption key");
  keys_cmd->require_subcommand(1);
  auto* keys_list_cmd = keys_cmd->add_subcommand("list", "List the tenant's data keys (never their material)");
  auto* keys_rotate_cmd = keys_cmd->add_subcommand(
      "rotate", "New data key versions for new writes; rewrap all data keys under the newest key-encryption key");
  auto* keys_shred_cmd = keys_cmd->add_subcommand("shred", "Destroy data keys: what they sealed becomes unreadable");
  std::string shred_user, shred_tenant, kek_file;
  auto* shred_user_opt = keys_shred_cmd->add_option("--user", shred_user, "End user whose keys are destroyed");
  auto* shred_tenant_opt = keys_shred_cmd->add_option("--tenant", shred_tenant, "Tenant whose keys are all destroyed");
  shred_user_opt->excludes(shred_tenant_opt);
  keys_shred_cmd->require_option(1);
  auto* keys_new_kek_cmd = keys_cmd->add_subcommand(
      "new-kek", "Append a new key-encryption key version to a key file (offline; then run keys rotate)");
  keys_new_kek_cmd->add_option("--key-file", kek_file, "The key file (e.g. <data>/master.key)")->required();

  cli::GovernanceCommands governance(app);
  cli::McpCommands mcp(app);

  CLI11_PARSE(app, argc, argv);

  if (serve_cmd->parsed()) return serve(serve_flags);
  if (keys_new_kek_cmd->parsed()) return cli::keys_new_kek(kek_file);
  if (auto code = governance.run_offline()) return *code;
  cli::ApiClient client(client_options(server, api_key, data));
  if (auto code = governance.run(client)) return *code;
  if (auto code = mcp.run(client)) return *code;
  if (secrets_set_cmd->parsed()) return cli::secrets_set(client, secret_name);
  if (secrets_list_cmd->parsed()) return cli::secrets_list(client);
  if (secrets_delete_cmd->parsed()) return cli::secrets_delete(client, secret_name);
  if (keys_list_cmd->parsed()) return cli::keys_list(client);
  if (keys_rotate_cmd->parsed()) return cli::keys_rotate(client);
  if (keys_shred_cmd->parsed()) return cli::keys_shred(client, shred_user, shred_tenant);
  if (apply_cmd->parsed()) return cli::agent_apply(client, agent_file);
  if (list_cmd->parsed()) return cli::agent_list(client);
  if (show_cmd->parsed()) return cli::agent_show(client, agent_name);
  if (chat_cmd->parsed()) return cli::chat(client, chat_agent, chat_session);
  if (run_show_cmd->parsed()) return cli::run_show(client, run_id);
  if (run_steps_cmd->parsed()) return cli::run_steps(client, run_id);
  return 1;
}
