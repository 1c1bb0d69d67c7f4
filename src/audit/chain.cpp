#include "audit/chain.h"

#include <algorithm>

#include "crypto/hash.h"

namespace continuum {

std::string audit_genesis_hash() { return std::string(kAuditHashBytes, '\0'); }

// Fields in this order; details with sorted keys (or as a string if they are
// not JSON). Written directly: this runs for every audited event, in the writer.
std::string canonical_event(const AuditEventRecord& event) {
  std::string out;
  out.reserve(160 + event.details_json.size());
  out += "{\"tenant\":";
  append_json_string(out, event.tenant_id);
  out += ",\"at_ms\":" + std::to_string(event.at_ms);
  out += ",\"principal\":";
  append_json_string(out, event.principal);
  out += ",\"action\":";
  append_json_string(out, event.action);
  out += ",\"resource\":";
  append_json_string(out, event.resource);
  out += ",\"run_id\":";
  append_json_string(out, event.run_id);
  out += ",\"outcome\":";
  append_json_string(out, event.outcome);
  out += ",\"details\":";
  if (event.details_canonical) {
    out += event.details_json;
    out += '}';
    return out;
  }
  auto details = parse_json(event.details_json);
  if (details.is_ok()) {
    append_canonical_json(out, *details);
  } else {
    append_json_string(out, event.details_json);
  }
  out += '}';
  return out;
}

std::string audit_chain_hash(const std::string& prev_hash, int64_t seq, const std::string& canonical) {
  std::string input = prev_hash;
  for (int shift = 56; shift >= 0; shift -= 8) input.push_back(static_cast<char>((static_cast<uint64_t>(seq) >> shift) & 0xff));
  input += canonical;
  return sha256(input);
}

std::string audit_checkpoint_message(const std::string& tenant, int64_t seq, const std::string& hash, int64_t at_ms) {
  return "continuum-audit-checkpoint/v1\n" + tenant + "\n" + std::to_string(seq) + "\n" + to_hex(hash) + "\n" +
         std::to_string(at_ms);
}

Status parse_canonical_event(const std::string& canonical, AuditEventRecord& event) {
  ASSIGN_OR_RETURN(auto object, parse_json_object(canonical));
  if (object.size() != 8) return invalid_argument("an audit event has 8 fields");
  ASSIGN_OR_RETURN(event.tenant_id, get_string(object, "tenant", "tenant"));
  ASSIGN_OR_RETURN(auto at, get_optional_int(object, "at_ms", "at_ms"));
  event.at_ms = at.value_or(0);
  ASSIGN_OR_RETURN(event.principal, get_string(object, "principal", "principal"));
  ASSIGN_OR_RETURN(event.action, get_string(object, "action", "action"));
  ASSIGN_OR_RETURN(event.resource, get_string(object, "resource", "resource"));
  ASSIGN_OR_RETURN(event.run_id, get_string(object, "run_id", "run_id"));
  ASSIGN_OR_RETURN(event.outcome, get_string(object, "outcome", "outcome"));
  const json::value* details = object.if_contains("details");
  if (details == nullptr) return invalid_argument("an audit event has details");
  event.details_json = to_json(*details);
  return Status::ok();
}

}  // namespace continuum
