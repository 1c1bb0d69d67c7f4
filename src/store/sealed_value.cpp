#include "store/sealed_value.h"

#include <endian.h>

#include <cstring>

namespace continuum {

namespace {
constexpr std::string_view kMagic("\0cs1", 4);
}  // namespace

std::string sealed_header(const std::string& scope, int64_t version) {
  CONTINUUM_CHECK(scope.size() <= 255, "a scope is at most 255 bytes (checked before sealing)");
  std::string out(kMagic);
  out.push_back(static_cast<char>(scope.size()));
  out += scope;
  uint64_t big_endian = htobe64(static_cast<uint64_t>(version));
  out.append(reinterpret_cast<const char*>(&big_endian), sizeof big_endian);
  return out;
}

Result<SealedHeader> parse_sealed_header(std::string_view sealed) {
  if (!sealed.starts_with(kMagic) || sealed.size() < kMagic.size() + 1) {
    return Status(Code::kDataLoss, "a stored payload is not sealed");
  }
  size_t scope_size = static_cast<unsigned char>(sealed[kMagic.size()]);
  size_t size = kMagic.size() + 1 + scope_size + 8;
  if (sealed.size() < size) return Status(Code::kDataLoss, "a sealed payload is truncated");
  uint64_t big_endian = 0;
  std::memcpy(&big_endian, sealed.data() + kMagic.size() + 1 + scope_size, sizeof big_endian);
  return SealedHeader{std::string(sealed.substr(kMagic.size() + 1, scope_size)),
                      static_cast<int64_t>(be64toh(big_endian)), size};
}

std::string payload_aad(std::string_view tenant, std::string_view table, std::string_view row,
                        std::string_view column, std::string_view sealed_header) {
  std::string aad;
  payload_aad_into(aad, tenant, table, row, column, sealed_header);
  return aad;
}

void payload_aad_into(std::string& out, std::string_view tenant, std::string_view table, std::string_view row,
                      std::string_view column, std::string_view sealed_header) {
  out.assign("continuum/payload");
  for (std::string_view part : {tenant, table, row, column, sealed_header}) {
    out.push_back('\0');
    out.append(part);
  }
}

}  // namespace continuum
