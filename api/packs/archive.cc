// Pack archive extraction with libarchive (see archive.h).
#include "api/packs/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace attune::packs {
namespace {

namespace fs = std::filesystem;

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

// The normalised relative path of an entry ("./a/b" → "a/b"; "." → ""), or nullopt if it is
// absolute or climbs out with "..".
std::optional<fs::path> safe_relative(std::string_view name) {
  if (name.empty()) return fs::path();
  if (name.front() == '/') return std::nullopt;
  fs::path out;
  for (const auto& part : fs::path(std::string(name))) {
    const std::string p = part.string();
    if (p.empty() || p == ".") continue;
    if (p == "..") return std::nullopt;
    out /= part;
  }
  return out;
}

// Whether a symlink at `rel` (relative to the root) pointing to `target` stays inside the root.
bool link_stays_inside(const fs::path& rel, std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  int depth = 0;
  for (const auto& part : rel.parent_path()) {
    if (!part.empty() && part != ".") ++depth;
  }
  for (const auto& part : fs::path(std::string(target))) {
    const std::string p = part.string();
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (--depth < 0) return false;
    } else {
      ++depth;
    }
  }
  return true;
}

bool fail(ExtractError& error, int status, std::string message) {
  error.status = status;
  error.message = std::move(message);
  return false;
}

}  // namespace

bool extract_archive(std::string_view data, const fs::path& dest, const ExtractLimits& limits,
                     ExtractError& error) {
  std::unique_ptr<archive, ArchiveCloser> a(archive_read_new());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK) {
    return fail(error, 400,
                std::string("the upload is not a tar or tar.gz archive: ") +
                    archive_error_string(a.get()));
  }
  int64_t total = 0, entries = 0;
  archive_entry* entry = nullptr;
  std::vector<char> buf(64 * 1024);
  while (true) {
    const int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return fail(error, 400,
                  std::string("the upload is not a valid tar or tar.gz archive: ") +
                      (archive_error_string(a.get()) ? archive_error_string(a.get()) : "unreadable"));
    }
    if (++entries > limits.max_entries) {
      return fail(error, 413, "the archive has more than " + std::to_string(limits.max_entries) +
                                  " entries");
    }
    const char* raw_name = archive_entry_pathname(entry);
    const std::string name = raw_name ? raw_name : "";
    auto rel = safe_relative(name);
    if (!rel) return fail(error, 400, "archive entry '" + name + "' escapes the pack root");
    if (rel->empty()) continue;  // "." or "./"
    const fs::path target = dest / *rel;
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) return fail(error, 400, "cannot create " + rel->parent_path().string() + ": " + ec.message());
    if (archive_entry_hardlink(entry) != nullptr) {
      return fail(error, 400, "archive entry '" + name + "' is a hard link (not supported)");
    }
    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR:
        fs::create_directories(target, ec);
        if (ec) return fail(error, 400, "cannot create " + name + ": " + ec.message());
        break;
      case AE_IFLNK: {
        const char* link = archive_entry_symlink(entry);
        const std::string to = link ? link : "";
        if (!link_stays_inside(*rel, to)) {
          return fail(error, 400,
                      "archive entry '" + name + "' is a symlink pointing outside the pack ('" +
                          to + "')");
        }
        fs::create_symlink(to, target, ec);
        if (ec) return fail(error, 400, "cannot create symlink " + name + ": " + ec.message());
        break;
      }
      case AE_IFREG: {
        // Never write through an existing symlink (an earlier entry could point it elsewhere).
        if (fs::is_symlink(fs::symlink_status(target, ec))) {
          return fail(error, 400, "archive entry '" + name + "' would write through a symlink");
        }
        const mode_t mode = (archive_entry_perm(entry) & 0111) != 0 ? 0755 : 0644;
        const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                              mode);
        if (fd < 0) return fail(error, 400, "cannot write " + name + ": " + std::strerror(errno));
        bool ok = true;
        while (true) {
          const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
          if (n == 0) break;
          if (n < 0) {
            ::close(fd);
            return fail(error, 400,
                        "archive entry '" + name + "' is unreadable: " +
                            (archive_error_string(a.get()) ? archive_error_string(a.get()) : "?"));
          }
          total += n;
          if (total > limits.max_unpacked_bytes) {
            ::close(fd);
            return fail(error, 413,
                        "the archive expands to more than " +
                            std::to_string(limits.max_unpacked_bytes) + " bytes");
          }
          size_t off = 0;
          while (off < static_cast<size_t>(n)) {
            const ssize_t w = ::write(fd, buf.data() + off, static_cast<size_t>(n) - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
              ok = false;
              break;
            }
            off += static_cast<size_t>(w);
          }
          if (!ok) break;
        }
        ::fchmod(fd, mode);  // the umask must not strip the executable bits
        if (::close(fd) != 0) ok = false;
        if (!ok) return fail(error, 500, "cannot write " + name + ": " + std::strerror(errno));
        break;
      }
      default:
        return fail(error, 400, "archive entry '" + name + "' is not a file, directory or symlink");
    }
  }
  if (entries == 0) return fail(error, 400, "the archive is empty");
  return true;
}

fs::path pack_root_of(const fs::path& dest) {
  std::error_code ec;
  if (fs::is_regular_file(dest / "pack.yaml", ec) || fs::is_regular_file(dest / "pack.yml", ec)) {
    return dest;
  }
  fs::path only;
  int count = 0;
  for (const auto& e : fs::directory_iterator(dest, ec)) {
    ++count;
    only = e.path();
  }
  if (count == 1 && fs::is_directory(fs::symlink_status(only, ec)) &&
      (fs::is_regular_file(only / "pack.yaml", ec) || fs::is_regular_file(only / "pack.yml", ec))) {
    return only;
  }
  return {};
}

}  // namespace attune::packs
