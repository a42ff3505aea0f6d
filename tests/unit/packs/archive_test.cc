// Pack archive extraction: layouts users and tools produce, and every way an archive may try to
// escape the pack root or expand without bound.
#include "api/packs/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace attune::packs {
namespace {

namespace fs = std::filesystem;

struct Entry {
  std::string name;
  std::string data;                 // regular file content
  char type = 'f';                  // f file, d dir, l symlink, h hard link
  std::string link;                 // symlink / hard link target
  int mode = 0644;
};

// A tar (gzip-compressed unless `gzip` is false) of `entries`, written with libarchive.
std::string make_tar(const std::vector<Entry>& entries, bool gzip = true) {
  std::vector<char> buf(8 << 20);
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_open_memory(a, buf.data(), buf.size(), &used);
  for (const auto& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.name.c_str());
    archive_entry_set_perm(ae, e.mode);
    if (e.type == 'd') {
      archive_entry_set_filetype(ae, AE_IFDIR);
    } else if (e.type == 'l') {
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_set_symlink(ae, e.link.c_str());
    } else if (e.type == 'h') {
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_hardlink(ae, e.link.c_str());
    } else {
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
    }
    archive_write_header(a, ae);
    if (e.type == 'f' && !e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("attune-archive-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  bool extract(const std::string& data, int64_t max = 1 << 20) {
    ExtractLimits limits;
    limits.max_unpacked_bytes = max;
    return extract_archive(data, dir_, limits, error_);
  }

  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
  ExtractError error_;
};

TEST_F(ArchiveTest, FilesAtTheRootWithDotPrefixes) {
  ASSERT_TRUE(extract(make_tar({{".", "", 'd'},
                                {"./pack.yaml", "ref: x\n"},
                                {"./actions/", "", 'd'},
                                {"./actions/run.sh", "echo hi\n", 'f', "", 0755},
                                {"./actions/link.sh", "", 'l', "run.sh"}})))
      << error_.message;
  EXPECT_EQ(pack_root_of(dir_), dir_);
  EXPECT_EQ(read(dir_ / "pack.yaml"), "ref: x\n");
  EXPECT_TRUE((fs::status(dir_ / "actions/run.sh").permissions() & fs::perms::owner_exec) !=
              fs::perms::none);
  EXPECT_FALSE((fs::status(dir_ / "pack.yaml").permissions() & fs::perms::owner_exec) !=
               fs::perms::none);
  EXPECT_TRUE(fs::is_symlink(dir_ / "actions/link.sh"));
}

TEST_F(ArchiveTest, OneTopLevelDirectoryAndPlainTar) {
  ASSERT_TRUE(extract(make_tar({{"mypack/pack.yaml", "ref: x\n"}}, false))) << error_.message;
  EXPECT_EQ(pack_root_of(dir_), dir_ / "mypack");
}

TEST_F(ArchiveTest, NoPackFileMeansNoRoot) {
  ASSERT_TRUE(extract(make_tar({{"a/pack.yaml", "x"}, {"b/pack.yaml", "y"}})));
  EXPECT_TRUE(pack_root_of(dir_).empty());
}

TEST_F(ArchiveTest, EscapingEntriesAreRefused) {
  const std::vector<std::vector<Entry>> bad = {
      {{"../evil", "x"}},
      {{"a/../../evil", "x"}},
      {{"/etc/evil", "x"}},
      {{"link", "", 'l', "/etc"}},
      {{"sub/link", "", 'l', "../../outside"}},
      {{"pack.yaml", "x"}, {"hard", "", 'h', "/etc/passwd"}},
      // A symlink to a directory inside, then a file written through it, is refused too.
      {{"d/", "", 'd'}, {"l", "", 'l', "d"}, {"l", "x"}},
  };
  for (const auto& entries : bad) {
    TearDown();
    SetUp();
    EXPECT_FALSE(extract(make_tar(entries))) << entries.back().name;
    EXPECT_EQ(error_.status, 400) << entries.back().name;
    EXPECT_FALSE(fs::exists(dir_.parent_path() / "evil"));
  }
}

TEST_F(ArchiveTest, NotAnArchive) {
  EXPECT_FALSE(extract("this is not a tarball at all, not even close............"));
  EXPECT_EQ(error_.status, 400);
  EXPECT_FALSE(extract(std::string("\x1f\x8b\x08\x00garbage", 12)));
  EXPECT_EQ(error_.status, 400);
}

TEST_F(ArchiveTest, ExpansionPastTheLimitIs413) {
  // 4 MiB of zeros compress to a few KiB: a small upload that expands far past the limit.
  ASSERT_FALSE(extract(make_tar({{"pack.yaml", "ref: x\n"}, {"big", std::string(4 << 20, '\0')}}),
                       1 << 20));
  EXPECT_EQ(error_.status, 413);
}

}  // namespace
}  // namespace attune::packs
