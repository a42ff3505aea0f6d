// Random URL-safe strings and create-once secret files.
#include "api/auth/secrets.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "api/auth/sodium.h"

namespace attune::auth {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

Error io_error(const std::string& what, const std::string& path, int err) {
  return make_error(Errc::kInternal, what + " '" + path + "': " + std::strerror(err));
}

Result<std::string> read_secret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read secret file", path, errno);
  std::ostringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) {
    secret.pop_back();
  }
  if (secret.empty()) {
    return make_error(Errc::kValidation, "secret file '" + path + "' is empty");
  }
  return secret;
}

Status write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::kInternal, std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

std::string random_urlsafe(size_t chars) {
  detail::ensure_sodium();
  std::string out(chars, '\0');
  for (char& c : out) c = kAlphabet[randombytes_uniform(64)];
  return out;
}

Result<std::string> load_or_create_secret(const std::string& path, size_t chars) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return read_secret(path);
  if (errno != ENOENT) return io_error("cannot stat secret file", path, errno);

  const std::string tmp = path + ".tmp." + random_urlsafe(12);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot create secret file", tmp, errno);
  const std::string secret = random_urlsafe(chars);
  Status written = write_all(fd, secret + "\n");
  int err = written.ok() ? 0 : EIO;
  // fchmod: the umask can only remove bits, but make the mode exactly 0600 regardless.
  if (written.ok() && (::fchmod(fd, 0600) != 0 || ::fsync(fd) != 0)) err = errno;
  ::close(fd);
  if (err != 0) {
    ::unlink(tmp.c_str());
    return io_error("cannot write secret file", tmp, err);
  }
  // link() fails with EEXIST instead of replacing: if another process won the race, use its
  // secret so both agree.
  const int linked = ::link(tmp.c_str(), path.c_str());
  err = errno;
  ::unlink(tmp.c_str());
  if (linked != 0) {
    if (err == EEXIST) return read_secret(path);
    return io_error("cannot install secret file", path, err);
  }
  return secret;
}

}  // namespace attune::auth
