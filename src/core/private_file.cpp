#include "core/private_file.h"

#include <fcntl.h>
#include <unistd.h>

namespace continuum {

namespace {

Status write_all(const std::string& path, int flags, const std::string& text) {
  int fd = ::open(path.c_str(), flags | O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return internal_error("cannot write " + path);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  return ok ? Status::ok() : internal_error("cannot write " + path);
}

}  // namespace

Status append_private_file(const std::string& path, const std::string& text) {
  return write_all(path, O_APPEND, text);
}

Status write_private_file(const std::string& path, const std::string& text) {
  ::unlink(path.c_str());  // a missing file is fine
  return write_all(path, O_TRUNC | O_EXCL, text);
}

}  // namespace continuum
