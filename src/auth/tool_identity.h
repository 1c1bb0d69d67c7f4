// The identity a tool call carries: a short-lived JWT the runtime signs for
// every HTTP tool call (header Continuum-Identity). Claims: iss (this
// runtime), sub (the end user), act.sub (the agent), aud (the tool's URL),
// tenant, run_id, step, session_id, jti, iat, exp (at most 5 minutes).
// Tools verify it with GET /.well-known/jwks.json. Inbound user tokens are
// never forwarded: this token is minted here, per call.
//
// Keys are Ed25519, kept in a key file (config identity_keys_file, default
// <data>/tool-identity.keys; "<kid> <seed hex>" per line, newest last, mode
// 0600). rotate() appends a new current key; the newest kKeysPublished keys
// stay in the JWKS, so tokens signed just before a rotation still verify.
// Nodes of a cluster share the file: each re-reads it when it changes (checked
// at most once a second), so a rotation on one node reaches the others.
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "crypto/signing.h"

namespace continuum {

struct ToolIdentityClaims {
  std::string tenant;
  std::string user_id;   // "" = the session has no end user: sub is then the agent
  std::string agent;
  std::string audience;  // the tool's URL
  std::string run_id;
  std::string session_id;
  int64_t step = 0;
};

class ToolIdentity {
 public:
  static constexpr int64_t kTokenLifetimeMaxS = 300;
  static constexpr size_t kKeysPublished = 3;

  static Result<std::unique_ptr<ToolIdentity>> open(const std::string& key_file, std::string issuer,
                                                    int64_t lifetime_s, const Clock& clock, Random& random);

  Result<std::string> token_for(const ToolIdentityClaims& claims);
  json::object jwks();
  // Makes a new key current; returns its kid. kConflict if the current key is
  // younger than the token lifetime: with kKeysPublished keys published,
  // every unexpired token then stays verifiable.
  Result<std::string> rotate();

 private:
  ToolIdentity(std::string key_file, std::string issuer, int64_t lifetime_s, const Clock& clock, Random& random)
      : key_file_(std::move(key_file)), issuer_(std::move(issuer)), lifetime_s_(lifetime_s), clock_(clock),
        random_(random) {}
  Status load();         // REQUIRES(mutex_)
  Status append_key();   // REQUIRES(mutex_)
  void reload_if_changed();  // REQUIRES(mutex_)

  std::string key_file_;
  std::string issuer_;
  int64_t lifetime_s_;
  const Clock& clock_;
  Random& random_;
  std::mutex mutex_;
  std::vector<std::pair<std::string, Ed25519Key>> keys_;  // GUARDED_BY(mutex_): (kid, key), oldest first
  int64_t checked_at_ms_ = 0;                             // GUARDED_BY(mutex_)
  int64_t file_size_ = -1;                                // GUARDED_BY(mutex_): when last read
  int64_t current_since_ms_ = 0;                          // GUARDED_BY(mutex_): when the current key was made current
};

}  // namespace continuum
