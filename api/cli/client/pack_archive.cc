#include "api/cli/client/pack_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace attune::cli::client {
namespace {

la_ssize_t write_cb(struct archive*, void* user, const void* buf, size_t n) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

}  // namespace

bool archive_directory(const std::string& dir, std::string* tar_gz, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(
           dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    paths.push_back(it->path());
  }
  if (ec) {
    *error = "cannot read " + dir + ": " + ec.message();
    return false;
  }
  std::sort(paths.begin(), paths.end());
  tar_gz->clear();
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  archive_write_open(a, tar_gz, nullptr, write_cb, nullptr);
  bool ok = true;
  for (const auto& p : paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) continue;  // dangling symlink
    const bool is_dir = S_ISDIR(st.st_mode);
    if (!is_dir && !S_ISREG(st.st_mode)) continue;
    std::string data;
    if (!is_dir) {
      std::ifstream in(p, std::ios::binary);
      if (!in) {
        *error = "cannot read " + p.string();
        ok = false;
        break;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      data = ss.str();
    }
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, fs::relative(p, dir).generic_string().c_str());
    archive_entry_set_filetype(e, is_dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, st.st_mode & 07777);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(e, st.st_mtime, 0);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (!data.empty() && archive_write_data(a, data.data(), data.size()) < 0)) {
      *error = std::string("cannot archive ") + p.string() + ": " + archive_error_string(a);
      ok = false;
    }
    archive_entry_free(e);
    if (!ok) break;
  }
  if (archive_write_close(a) != ARCHIVE_OK && ok) {
    *error = std::string("cannot archive ") + dir + ": " + archive_error_string(a);
    ok = false;
  }
  archive_write_free(a);
  return ok;
}

}  // namespace attune::cli::client
