#include "cli/commands.h"

#include "crypto/kek.h"

#include <yaml-cpp/yaml.h>

#include <iostream>
#include <map>

namespace continuum::cli {

namespace {


void print_pretty(const json::value& value, std::ostream& out, int indent = 0) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (value.is_object() && !value.as_object().empty()) {
    out << "{\n";
    bool first = true;
    for (const auto& entry : value.as_object()) {
      if (!first) out << ",\n";
      first = false;
      out << pad << "  " << json::serialize(json::string(entry.key())) << ": ";
      print_pretty(entry.value(), out, indent + 2);
    }
    out << "\n" << pad << "}";
  } else if (value.is_array() && !value.as_array().empty()) {
    out << "[\n";
    bool first = true;
    for (const auto& element : value.as_array()) {
      if (!first) out << ",\n";
      first = false;
      out << pad << "  ";
      print_pretty(element, out, indent + 2);
    }
    out << "\n" << pad << "]";
  } else {
    out << json::serialize(value);
  }
}


json::value yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json::object obj;
      for (const auto& entry : node) obj[entry.first.as<std::string>()] = yaml_to_json(entry.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      json::array arr;
      for (const auto& element : node) arr.push_back(yaml_to_json(element));
      return arr;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (node.Tag() == "!") return json::string(text);  // quoted in the YAML
      if (text == "true") return true;
      if (text == "false") return false;
      if (text == "null" || text == "~") return nullptr;
      auto number = parse_json(text);
      if (number.is_ok() && number->is_number()) return *number;
      return json::string(text);
    }
    default:
      return nullptr;
  }
}

std::string field(const json::value& value, std::string_view key) {
  if (!value.is_object()) return {};
  const json::value* found = value.as_object().if_contains(key);
  if (found == nullptr) return {};
  return found->is_string() ? std::string(found->as_string()) : json::serialize(*found);
}

// What the chat shows of one run: text as it streams, tool calls briefly,
// failures. Deltas sent before the client subscribed are not replayed, so each
// model step's committed content is compared with what was printed and the
// missing part is printed then.
struct ChatView {
  std::map<int64_t, std::string> printed_by_seq;
  bool printed_any = false;

  void show(const std::string& event, const std::string& data) {
    auto parsed = parse_json(data);
    if (!parsed.is_ok() || !parsed->is_object()) return;
    const json::object& obj = parsed->as_object();
    if (event == "text_delta") {
      std::string delta = field(*parsed, "delta");
      const json::value* seq = obj.if_contains("seq");
      printed_by_seq[seq && seq->is_int64() ? seq->as_int64() : -1] += delta;
      print(delta);
      return;
    }
    const json::value* payload = obj.if_contains("payload");
    if (payload == nullptr) return;
    if (event == "model_call") {
      const json::value* seq = obj.if_contains("seq");
      std::string content = field(payload->as_object().at("message"), "content");
      if (content == "null") content.clear();
      const std::string& printed = printed_by_seq[seq && seq->is_int64() ? seq->as_int64() : -1];
      if (content.size() > printed.size() && content.compare(0, printed.size(), printed) == 0) {
        print(content.substr(printed.size()));
      }
    } else if (event == "tool_call") {
      std::cout << (printed_any ? "\n" : "") << "  [tool " << field(*payload, "name") << " "
                << field(*payload, "arguments") << "]\n";
      printed_any = false;
    } else if (event == "run_failed" || event == "run_cancelled") {
      print("[" + event + ": " + field(*payload, "code") + ": " + field(*payload, "message") + "]");
    }
  }
  void print(const std::string& text) {
    std::cout << text << std::flush;
    printed_any = printed_any || !text.empty();
  }
};

Status follow_run(ApiClient& client, const std::string& run_id) {
  std::string buffer;
  ChatView view;
  Status status = client.stream("/v1/runs/" + run_id + "/events", [&](std::string_view chunk) {
    buffer.append(chunk);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      std::string frame = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      std::string event, data;
      size_t start = 0;
      while (start < frame.size()) {
        size_t newline = frame.find('\n', start);
        if (newline == std::string::npos) newline = frame.size();
        std::string line = frame.substr(start, newline - start);
        if (line.rfind("event: ", 0) == 0) event = line.substr(7);
        if (line.rfind("data: ", 0) == 0) data = line.substr(6);
        start = newline + 1;
      }
      if (!event.empty()) view.show(event, data);
    }
  });
  std::cout << "\n";
  return status;
}

}  // namespace

int fail(const Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  return 1;
}

int print_result(const Result<json::value>& result) {
  if (!result.is_ok()) return fail(result.status());
  print_pretty(*result, std::cout);
  std::cout << "\n";
  return 0;
}

Result<json::value> yaml_file_to_json(const std::string& path) {
  try {
    return yaml_to_json(YAML::LoadFile(path));
  } catch (const std::exception& error) {
    return invalid_argument("cannot read " + path + ": " + error.what());
  }
}

int agent_apply(ApiClient& client, const std::string& file) {
  auto spec = yaml_file_to_json(file);
  if (!spec.is_ok()) return fail(spec.status());
  std::string name = field(*spec, "name");
  if (name.empty()) return fail(invalid_argument("the agent file needs a name"));
  return print_result(client.call("PUT", "/v1/agents/" + name, json::serialize(*spec)));
}

int agent_list(ApiClient& client) { return print_result(client.call("GET", "/v1/agents")); }
int agent_show(ApiClient& client, const std::string& name) {
  return print_result(client.call("GET", "/v1/agents/" + name));
}
int run_show(ApiClient& client, const std::string& run_id) {
  return print_result(client.call("GET", "/v1/runs/" + run_id));
}
int run_steps(ApiClient& client, const std::string& run_id) {
  return print_result(client.call("GET", "/v1/runs/" + run_id + "/steps?limit=1000"));
}

int secrets_set(ApiClient& client, const std::string& name) {
  std::string value;
  std::getline(std::cin, value);
  if (!value.empty() && value.back() == '\r') value.pop_back();
  return print_result(client.call("PUT", "/v1/secrets/" + name, json::serialize(json::object{{"value", value}})));
}
int secrets_list(ApiClient& client) { return print_result(client.call("GET", "/v1/secrets")); }
int secrets_delete(ApiClient& client, const std::string& name) {
  return print_result(client.call("DELETE", "/v1/secrets/" + name));
}

int keys_list(ApiClient& client) { return print_result(client.call("GET", "/v1/keys")); }
int keys_rotate(ApiClient& client) { return print_result(client.call("POST", "/v1/keys/rotate", "{}")); }
int keys_shred(ApiClient& client, const std::string& user, const std::string& tenant) {
  json::object body;
  if (!user.empty()) body["user"] = user;
  if (!tenant.empty()) body["tenant"] = tenant;
  return print_result(client.call("POST", "/v1/keys/shred", json::serialize(body)));
}
int keys_new_kek(const std::string& key_file) {
  auto version = add_key_to_file(key_file);
  if (!version.is_ok()) return fail(version.status());
  std::cout << "added key-encryption key version " << *version << " to " << key_file
            << "; run `continuum keys rotate` on the server to rewrap data keys under it\n";
  return 0;
}

int chat(ApiClient& client, const std::string& agent, const std::string& session_id) {
  std::string session = session_id;
  if (session.empty()) {
    auto created = client.call("POST", "/v1/sessions", json::serialize(json::object{{"agent", agent}}));
    if (!created.is_ok()) return fail(created.status());
    session = field(*created, "id");
  } else {
    auto existing = client.call("GET", "/v1/sessions/" + session);
    if (!existing.is_ok()) return fail(existing.status());
  }
  std::cout << "session " << session << " (continue later with: continuum chat " << agent << " --session "
            << session << ")\n";
  std::string line;
  while (std::cout << "> " << std::flush, std::getline(std::cin, line)) {
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    auto run = client.call("POST", "/v1/sessions/" + session + "/runs",
                           json::serialize(json::object{{"input", line}}));
    if (!run.is_ok()) return fail(run.status());
    Status followed = follow_run(client, field(*run, "id"));
    if (!followed.is_ok()) return fail(followed);
  }
  return 0;
}

}  // namespace continuum::cli
