// Plain rows of the store. Every row carries tenant_id; every query is scoped by it.
// JSON-valued columns are kept as serialized text: the store does not interpret them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace continuum {

struct AgentRecord {
  std::string tenant_id;
  std::string name;
  int64_t version = 0;      // 1, 2, ... ; immutable once written
  std::string spec_json;    // the validated agent definition
  int64_t created_at_ms = 0;
};

struct SessionRecord {
  std::string tenant_id;
  std::string id;
  std::string agent_name;
  std::string metadata_json = "{}";
  int64_t created_at_ms = 0;
  std::string user_id = "";  // the end user the conversation belongs to ("" = none); keys user-scoped sealing
};

// One conversation item (a Chat Completions style message object).
struct ItemRecord {
  int64_t seq = 0;  // assigned by the store on append; increasing within a session
  std::string tenant_id;
  std::string session_id;
  std::string run_id;
  std::string message_json;
  int64_t created_at_ms = 0;
  std::string id = "";  // unique; assigned on append if empty (binds a sealed message to its row)
};

// Run statuses as stored and shown to clients.
inline constexpr const char* kRunQueued = "queued";
inline constexpr const char* kRunRunning = "running";
inline constexpr const char* kRunWaiting = "waiting";
inline constexpr const char* kRunCompleted = "completed";
inline constexpr const char* kRunFailed = "failed";
inline constexpr const char* kRunCancelled = "cancelled";

bool is_terminal_status(const std::string& status);
// Running or waiting (for an approval): the run is executing on some node.
inline bool is_active_status(const std::string& status) { return status == kRunRunning || status == kRunWaiting; }

struct RunRecord {
  std::string tenant_id;
  std::string id;
  std::string session_id;
  std::string agent_name;
  int64_t agent_version = 0;
  std::string status = kRunQueued;
  std::string input;
  // The materialized fold of the journal (engine/snapshot.h), updated in the
  // same transaction as every journal append.
  std::string snapshot_json = "{}";
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  // Bumped by every update. An update names the version it was built on and
  // fails (kConflict) if the row moved on: a batch built on a batch that
  // failed can never commit after it (fencing within one node).
  int64_t version = 0;
  // Fencing (updates only): the epoch of the session lease this update is
  // made under; the store refuses it unless that lease is current and
  // unexpired. 0 = unfenced (one node).
  int64_t lease_epoch = 0;
};

// One journal entry. (run_id, seq) is unique: a step is written once.
struct StepRecord {
  std::string tenant_id;
  std::string run_id;
  int64_t seq = 0;
  std::string kind;
  std::string payload_json;
  int64_t created_at_ms = 0;
  int64_t lease_epoch = 0;  // the session lease epoch it was appended under (0 = one node)
};

// A data encryption key, wrapped by a key-encryption key. (tenant, scope,
// version) is unique. Destroying a key (crypto-shredding) empties wrapped_key.
struct DataKeyRecord {
  std::string tenant_id;
  std::string scope;        // "tenant" or "user:<id>"
  int64_t version = 0;      // 1, 2, ... per (tenant, scope)
  int64_t kek_version = 0;  // which key-encryption key wraps it
  std::string wrapped_key;  // "" once destroyed
  int64_t created_at_ms = 0;
  int64_t destroyed_at_ms = 0;
};

// A vault secret (a tool credential). `value` is sealed at rest and never
// leaves the server: only the tool runner reads it, to set a header.
struct SecretRecord {
  std::string tenant_id;
  std::string name;
  std::string value;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

// An API key. The key a client holds is "ck_<id>_<secret>"; only the
// SHA-256 of the secret is stored. Authentication looks keys up by id across
// tenants: the key is what tells the server which tenant the caller is in.
struct ApiKeyRecord {
  std::string id;               // "key_<hex>"; unique across tenants
  std::string tenant_id;
  std::string user_id;          // the principal's subject
  std::string roles_json = "[]";  // JSON array of role names
  std::string name;             // a label for people
  std::string secret_hash;      // lowercase hex SHA-256 of the secret
  int64_t created_at_ms = 0;
  int64_t revoked_at_ms = 0;    // 0 = active
  std::string created_by;       // the subject that created it ("" at bootstrap)
};

// One version of a tenant's policy document (policy/policy.h), in its
// canonical JSON form. Versions are immutable; the newest one is in force.
struct PolicyRecord {
  std::string tenant_id;
  int64_t version = 0;          // 1, 2, ...
  std::string document_json;
  int64_t created_at_ms = 0;
  std::string created_by;
};

// Approval statuses. "pending" past expires_at_ms is shown as expired.
inline constexpr const char* kApprovalPending = "pending";
inline constexpr const char* kApprovalApproved = "approved";
inline constexpr const char* kApprovalDenied = "denied";
inline constexpr const char* kApprovalExpired = "expired";
inline constexpr const char* kApprovalWithdrawn = "withdrawn";  // its run ended first

// A tool call that policy made wait for a person's decision. Bound to the
// exact arguments by their hash; decided at most once.
struct ApprovalRecord {
  std::string tenant_id;
  std::string id;               // "apr_<hex>", derived from (run, seq): one per call
  std::string run_id;
  std::string session_id;
  int64_t seq = 0;              // the tool call's journal seq
  std::string tool;
  std::string arguments_json;   // sealed at rest
  std::string arguments_hash;   // hex SHA-256 of arguments_json
  std::string statement;        // the policy statement that required it
  std::string requested_by;     // the session's end user ("" = none)
  std::string agent;
  std::string status = kApprovalPending;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
  int64_t decided_at_ms = 0;
  std::string decided_by;       // "" until decided; "system" for an expiry
  std::string comment;
};

// One audit event. The store appends it to its tenant's hash chain in the
// same transaction as the rest of its batch: it assigns seq (1, 2, ... per
// tenant), prev_hash and hash (audit/chain.h). Events are plaintext (audit
// verification works offline, without keys) and never hold secrets or tool
// arguments: only names, ids and hashes.
struct AuditEventRecord {
  std::string tenant_id;
  int64_t seq = 0;            // assigned by the store
  int64_t at_ms = 0;
  std::string principal;      // "user:alice", "agent:support (for user:alice)", "anonymous", "system"
  std::string action;         // "auth:fail", "run:create", "tool:invoke", "policy:write", ...
  std::string resource;       // "run:run_…", "tool:refund", ...
  std::string run_id;         // "" when not about a run
  std::string outcome;        // "allow" | "deny" | "require_approval" | "ok" | "fail" | a status
  std::string details_json = "{}";  // statement, inputs_hash, reason, ...
  bool details_canonical = false;   // details_json is to_canonical_json text (audit_event() writes it so)
  std::string prev_hash;      // raw 32 bytes; assigned by the store
  std::string hash;           // raw 32 bytes; assigned by the store
  std::string canonical;      // reads only: the stored canonical_event() the hash covers
};

// A signed statement that a tenant's chain had `hash` at `seq`: a truncation
// below it, or any change, is detectable against the signature.
struct AuditCheckpointRecord {
  std::string tenant_id;
  int64_t seq = 0;
  std::string hash;           // raw 32 bytes
  int64_t at_ms = 0;
  std::string key_id;         // hex SHA-256 prefix of the public key
  std::string public_key;     // raw 32-byte Ed25519 public key
  std::string signature;      // raw 64 bytes over audit_checkpoint_message()
};

// Tool pinning (tools/mcp/tool_pins.h): the definition of an MCP server's tool
// as an administrator (or its first use) approved it, and what the server
// serves now. A tool whose served definition differs is withheld.
inline constexpr const char* kMcpPinApproved = "approved";
inline constexpr const char* kMcpPinChanged = "changed";  // withheld until re-approved

struct McpToolPinRecord {
  std::string tenant_id;
  std::string server;                   // the agents' name for the server
  std::string tool;                     // the tool's name on the server
  std::string status = kMcpPinApproved;
  std::string approved_hash;            // hex SHA-256 of the approved definition
  std::string approved_definition_json; // {name, title, description, inputSchema}
  int64_t approved_at_ms = 0;
  std::string approved_by;              // "first use" or the approving principal
  std::string seen_hash;                // what the server serves now (= approved_hash unless changed)
  std::string seen_definition_json;
  int64_t changed_at_ms = 0;            // when seen_hash last changed away from approved_hash
};

// What one logical change writes; applied atomically. Many batches share one
// transaction and one fsync (group commit), each under its own savepoint.
struct WriteBatch {
  std::vector<AgentRecord> agent_inserts;       // conflict if (tenant, name, version) exists
  std::vector<SessionRecord> session_inserts;
  std::vector<SessionRecord> session_deletes;   // deletes items, runs and journals too
  std::vector<SessionRecord> session_metadata_updates;  // metadata replaced; must exist
  std::vector<RunRecord> run_inserts;
  std::vector<RunRecord> run_updates;           // status, snapshot, updated_at; only if the row is at version - 1
  std::vector<RunRecord> run_deletes;           // with its journal; only a finished run (else kConflict)
  std::vector<StepRecord> steps;                // conflict if (run, seq) exists
  std::vector<ItemRecord> items;                // seq assigned by the store
  std::vector<ItemRecord> item_deletes;         // by (tenant, session, seq); must exist
  std::vector<DataKeyRecord> data_key_inserts;  // conflict if (tenant, scope, version) exists
  std::vector<DataKeyRecord> data_key_updates;  // kek_version, wrapped_key, destroyed_at; must exist
  std::vector<SecretRecord> secret_upserts;     // created, or value and updated_at replaced
  std::vector<SecretRecord> secret_deletes;     // by (tenant, name); must exist
  std::vector<ApiKeyRecord> api_key_inserts;    // conflict if the id exists
  std::vector<ApiKeyRecord> api_key_revokes;    // by (tenant, id), sets revoked_at; must exist and be active
  std::vector<PolicyRecord> policy_inserts;     // conflict if (tenant, version) exists
  std::vector<ApprovalRecord> approval_inserts;   // conflict if (tenant, id) exists
  // status, decided_at, decided_by, comment; only from pending, and (except
  // to expired) only before expires_at: otherwise kConflict. To withdrawn:
  // if still pending, else nothing (never a conflict).
  std::vector<ApprovalRecord> approval_decisions;
  std::vector<AuditEventRecord> audit_events;   // appended to their tenants' chains, in order
  std::vector<AuditCheckpointRecord> audit_checkpoints;  // conflict if (tenant, seq) exists
  std::vector<McpToolPinRecord> mcp_tool_pin_inserts;    // first pins: nothing if (tenant, server, tool) exists
  std::vector<McpToolPinRecord> mcp_tool_pin_upserts;    // created, or every field replaced

  bool empty() const {
    return agent_inserts.empty() && session_inserts.empty() && session_deletes.empty() &&
           session_metadata_updates.empty() && item_deletes.empty() && run_inserts.empty() && run_deletes.empty() && run_updates.empty() && steps.empty() && items.empty() &&
           data_key_inserts.empty() && data_key_updates.empty() && secret_upserts.empty() &&
           secret_deletes.empty() && api_key_inserts.empty() && api_key_revokes.empty() &&
           policy_inserts.empty() && approval_inserts.empty() && approval_decisions.empty() &&
           audit_events.empty() && audit_checkpoints.empty() && mcp_tool_pin_inserts.empty() &&
           mcp_tool_pin_upserts.empty();
  }
};

}  // namespace continuum
