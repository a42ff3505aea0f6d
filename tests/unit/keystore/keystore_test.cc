// Datastore core: XChaCha20-Poly1305 sealing (round trip, random nonces, AAD binding, wrong key,
// tampering), key refs and owners, TTL expiry driven by a ManualClock through a real
// DefinitionsTable on a temp EmbeddedLog (including an expiry racing an update, and a restart
// replay), sealed parameters, and the action/template views.
#include <gtest/gtest.h>

#include <filesystem>
#include <atomic>
#include <future>
#include <thread>
#include <mutex>
#include <random>

#include "processors/keystore/base64.h"
#include "processors/keystore/cipher.h"
#include "processors/keystore/expiry.h"
#include "processors/keystore/keys.h"
#include "processors/keystore/sealed.h"
#include "topology/core/time.h"
#include "topology/embedded_log.h"

namespace attune::keystore {
namespace {

using namespace std::chrono_literals;

const Cipher& cipher() {
  static const Cipher c("0123456789abcdef0123456789abcdef-test-secret");
  return c;
}

TEST(Cipher, RoundTripWithFreshNoncePerValue) {
  const std::string a = cipher().seal("hunter2-secret", "system.pw");
  const std::string b = cipher().seal("hunter2-secret", "system.pw");
  EXPECT_NE(a, b);  // a random nonce per write
  EXPECT_TRUE(Cipher::looks_sealed(a));
  EXPECT_EQ(a.find("hunter2"), std::string::npos);
  auto open = cipher().open(a, "system.pw");
  ASSERT_TRUE(open.ok()) << open.error().message;
  EXPECT_EQ(*open, "hunter2-secret");
  EXPECT_EQ(*cipher().open(cipher().seal("", "x"), "x"), "");
}

TEST(Cipher, AssociatedDataWrongKeyAndTamperingAreRefused) {
  const std::string sealed = cipher().seal("value", "system.a");
  EXPECT_EQ(cipher().open(sealed, "system.b").error().code, Errc::kUnauthorized);
  const Cipher other("another-secret-of-at-least-32-characters");
  EXPECT_EQ(other.open(sealed, "system.a").error().code, Errc::kUnauthorized);
  std::string tampered = sealed;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(cipher().open(tampered, "system.a").ok());
  EXPECT_EQ(cipher().open("plain", "system.a").error().code, Errc::kValidation);
  EXPECT_EQ(cipher().open("v1:!!!", "system.a").error().code, Errc::kValidation);
  EXPECT_EQ(cipher().open("v1:", "system.a").error().code, Errc::kValidation);
}

// Values sealed before the decryption path was rewritten must still open: these were produced
// independently of our code (libsodium's own XChaCha20-Poly1305 and base64, nonce 00..17) under
// the test secret and AAD "system.kat".
TEST(Cipher, OpensTheStoredFormatKnownAnswers) {
  auto a = cipher().open(
      "v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXqLko/vMdSV7XQ7wfbNyppe4/2KDCgrVjCMHrZVc=", "system.kat");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a, "sknown answer");
  auto b = cipher().open(
      "v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXqLkt+u8YAlTSW6ARddFp2NEqVTX0PpWI8P/TEHyuVSX0bZgeymsQh6+"
      "W7/7TIdLh2I+WUij4zvrwvCZSn4cL8uwRq4uZ+iJ/EoyIxci+h7K609Y/yJrMj9fjcuYd3lqrqmNaZlCQukAvghsuP/"
      "+rR300YNTj",
      "system.kat");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b, "s" + std::string(100, 'k'));
  EXPECT_EQ(cipher()
                .open("v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXqLko/vMdSV7XQ7wfbNyppe4/2KDCgrVjCMHrZVc=",
                      "system.other")
                .error()
                .code,
            Errc::kUnauthorized);
}

TEST(Cipher, LargeValuesRoundTripAndTruncationIsRefused) {
  std::mt19937 rng(6);
  for (size_t n : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{33}, size_t{4095},
                   size_t{4096}, size_t{65536} + 7}) {
    std::string plain(n, '\0');
    for (auto& c : plain) c = static_cast<char>(rng());
    const std::string sealed = cipher().seal(plain, "system.big");
    auto open = cipher().open(sealed, "system.big");
    ASSERT_TRUE(open.ok()) << n << ": " << open.error().message;
    EXPECT_EQ(*open, plain) << n;
    // Dropping a base64 group, or the whole tag, never opens.
    EXPECT_FALSE(cipher().open(sealed.substr(0, sealed.size() - 4), "system.big").ok()) << n;
    EXPECT_FALSE(cipher().open(sealed.substr(0, 3 + 32), "system.big").ok()) << n;
    EXPECT_FALSE(cipher().open(sealed.substr(0, 3 + 20), "system.big").ok()) << n;
  }
}

// The AVX2 decoder and the scalar one accept exactly the same texts and produce the same bytes,
// at every length around the 32-character vector step and with a bad character anywhere.
TEST(Base64, VectorAndScalarDecodersAgree) {
  std::mt19937 rng(42);
  const bool avx2 = base64_decode_avx2_available();
  if (!avx2) std::printf("note: no AVX2 on this CPU; only the scalar decoder is checked\n");
  for (size_t n = 0; n <= 300; ++n) {
    std::vector<unsigned char> raw(n);
    for (auto& b : raw) b = static_cast<unsigned char>(rng());
    std::string text;
    base64_encode(raw.data(), raw.size(), text);
    ASSERT_EQ(base64_decoded_size(text), n);
    std::vector<unsigned char> a(n + 4, 0xaa), b(n + 4, 0xbb);  // room for altered padding
    ASSERT_TRUE(base64_decode_scalar(text, a.data())) << n;
    EXPECT_TRUE(std::equal(raw.begin(), raw.end(), a.begin())) << n;
    EXPECT_EQ(a[n], 0xaa) << "wrote past the end at " << n;
    if (avx2) {
      ASSERT_TRUE(base64_decode_avx2(text, b.data())) << n;
      EXPECT_TRUE(std::equal(raw.begin(), raw.end(), b.begin())) << n;
      EXPECT_EQ(b[n], 0xbb) << "wrote past the end at " << n;
    }
    ASSERT_TRUE(base64_decode(text, b.data()));
    EXPECT_TRUE(std::equal(raw.begin(), raw.end(), b.begin())) << n;
    // A character outside the alphabet (or a '=' that is not trailing padding) at any position.
    for (size_t pos = 0; pos < text.size(); pos += 1 + pos / 16) {
      for (char bad : {'=', '-', '_', '\0', '\x80', '\xff', ' ', '@', '[', '`', '{'}) {
        std::string t = text;
        if (t[pos] == bad) continue;
        if (bad == '=' && pos + 2 >= t.size()) continue;  // may form valid padding
        t[pos] = bad;
        EXPECT_FALSE(base64_decode_scalar(t, a.data())) << n << " @" << pos << " " << int(bad);
        if (avx2) {
          EXPECT_FALSE(base64_decode_avx2(t, b.data())) << n << " @" << pos << " " << int(bad);
        }
      }
    }
  }
  EXPECT_EQ(base64_decoded_size("abc"), std::string_view::npos);
  unsigned char out[4];
  EXPECT_FALSE(base64_decode("abc", out));
  EXPECT_FALSE(base64_decode("A=B=", out));
  EXPECT_FALSE(base64_decode("AB=C", out));
}

TEST(Keys, RefsAndOwners) {
  EXPECT_TRUE(valid_local_ref("api_key-2"));
  EXPECT_FALSE(valid_local_ref(""));
  EXPECT_FALSE(valid_local_ref("Upper"));
  EXPECT_FALSE(valid_local_ref("a.b"));
  EXPECT_FALSE(valid_local_ref(std::string(64, 'a')));
  EXPECT_TRUE(valid_local_ref(std::string(63, 'a')));

  EXPECT_EQ(canonical_ref(OwnerType::kSystem, "", "x"), "system.x");
  EXPECT_EQ(canonical_ref(OwnerType::kIdentity, "ada", "x"), "identity.ada.x");
  EXPECT_EQ(canonical_ref(OwnerType::kAction, "p.act", "x"), "action.p.act.x");

  struct Case {
    const char* segment;
    bool ok;
    OwnerType type;
    const char* owner;
    const char* local;
    const char* ref;
  };
  const Case cases[] = {
      {"token", true, OwnerType::kSystem, "", "token", "system.token"},
      {"system.token", true, OwnerType::kSystem, "", "token", "system.token"},
      {"identity.ada.k", true, OwnerType::kIdentity, "ada", "k", "identity.ada.k"},
      {"pack.my-pack.k", true, OwnerType::kPack, "my-pack", "k", "pack.my-pack.k"},
      {"action.p.act.k", true, OwnerType::kAction, "p.act", "k", "action.p.act.k"},
      {"sensor.p.s.k", true, OwnerType::kSensor, "p.s", "k", "sensor.p.s.k"},
      {"system.a.b", false, {}, "", "", ""},
      {"pack.k", false, {}, "", "", ""},
      {"pack..k", false, {}, "", "", ""},
      {"nobody.x.k", false, {}, "", "", ""},
      {"Token", false, {}, "", "", ""},
      {"", false, {}, "", "", ""},
  };
  for (const auto& c : cases) {
    auto r = parse_ref(c.segment);
    ASSERT_EQ(r.has_value(), c.ok) << c.segment;
    if (!r) continue;
    EXPECT_EQ(r->owner_type, c.type) << c.segment;
    EXPECT_EQ(r->owner, c.owner) << c.segment;
    EXPECT_EQ(r->local_ref, c.local) << c.segment;
    EXPECT_EQ(r->ref, c.ref) << c.segment;
  }
  for (auto t : {OwnerType::kSystem, OwnerType::kIdentity, OwnerType::kPack, OwnerType::kAction,
                 OwnerType::kSensor}) {
    EXPECT_EQ(parse_owner_type(to_string(t)), t);
  }
  EXPECT_FALSE(parse_owner_type("team"));
}

TEST(Keys, ValuesAreSealedUnderTheirRef) {
  Json key = {{"ref", "system.db"}};
  const Json value = {{"user", "u"}, {"password", "p4ssw0rd!"}, {"ports", {1, 2}}};
  set_value(key, value, true, cipher());
  EXPECT_TRUE(key["value"].is_null());
  EXPECT_EQ(key.dump().find("p4ssw0rd"), std::string::npos);
  EXPECT_EQ(*read_value(key, cipher()), value);
  // Moved to another ref, the ciphertext no longer opens.
  Json moved = key;
  moved["ref"] = "system.other";
  EXPECT_FALSE(read_value(moved, cipher()).ok());
  set_value(key, 42, false, cipher());
  EXPECT_EQ(key["value"], 42);
  EXPECT_FALSE(key.contains(kSealedField));
  EXPECT_EQ(*read_value(key, cipher()), 42);
}

TEST(Keys, ExpiryDecisionsAreFunctionsOfTime) {
  const int64_t now = 1767225600000;
  auto key = [](const char* ref, std::optional<int64_t> at) {
    return std::make_shared<const Json>(
        Json{{"ref", ref}, {"expires_at", at ? Json(format_rfc3339_ms(*at)) : Json(nullptr)}});
  };
  std::vector<JsonPtr> keys = {key("system.a", now - 1), key("system.b", now),
                               key("system.c", now + 500), key("system.d", now + 100),
                               key("system.e", std::nullopt)};
  EXPECT_TRUE(is_expired(*keys[1], now));  // the deadline itself counts
  EXPECT_FALSE(is_expired(*keys[2], now));
  EXPECT_FALSE(is_expired(*keys[4], now));
  EXPECT_EQ(expires_at_ms(*keys[3]), now + 100);
  EXPECT_FALSE(expires_at_ms(*keys[4]).has_value());
}

// TTL expiry through the log, with a ManualClock: nothing sleeps.
class ExpiryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-keystore-" + std::to_string(std::random_device{}()));
    open();
  }
  void TearDown() override {
    close();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    auto db = state::Db::open(dir_.string());
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok());
    log_ = std::move(*log);
    table_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(table_->start().ok());
  }
  void close() {
    table_.reset();
    log_.reset();
    db_.reset();
  }
  // Writes a key (plaintext value) expiring `ttl_ms` after the clock's now; returns it.
  Json put(const std::string& local, std::optional<int64_t> ttl_ms, int64_t rev) {
    Json key = {{"id", rev},
                {"ref", "system." + local},
                {"local_ref", local},
                {"owner_type", "system"},
                {"rev", rev},
                {"expires_at",
                 ttl_ms ? Json(format_rfc3339_ms(clock_.now_ms() + *ttl_ms)) : Json(nullptr)}};
    set_value(key, "v-" + local, false, cipher());
    auto pos = log_->produce({definition_record(kKind, key, clock_.now_ms(), "test")});
    EXPECT_TRUE(pos.ok());
    EXPECT_TRUE(table_->wait_applied(pos->back().offset, 5s));
    return key;
  }

  // Writes `n` keys system.<prefix><i> in one batch; key i expires (i + 1) * step_ms from now, or
  // never when step_ms is 0.
  void put_many(const std::string& prefix, int n, int64_t step_ms) {
    std::vector<OutRecord> records;
    for (int i = 0; i < n; ++i) {
      const std::string local = prefix + std::to_string(i);
      Json key = {{"id", 1000 + i},
                  {"ref", "system." + local},
                  {"local_ref", local},
                  {"owner_type", "system"},
                  {"rev", 1000 + i}};
      if (step_ms > 0) key["expires_at"] = format_rfc3339_ms(clock_.now_ms() + (i + 1) * step_ms);
      set_value(key, i, false, cipher());
      records.push_back(definition_record(kKind, key, clock_.now_ms(), "test"));
    }
    auto pos = log_->produce(std::move(records));
    ASSERT_TRUE(pos.ok());
    ASSERT_TRUE(table_->wait_applied(pos->back().offset, 5s));
  }

  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<EmbeddedLog> log_;
  std::unique_ptr<DefinitionsTable> table_;
  ManualClock clock_;
};

TEST_F(ExpiryTest, ExpiresAtTheDeadlineThroughALogRecord) {
  put("short", 1000, 1);
  put("long", 5000, 2);
  put("forever", std::nullopt, 3);
  KeyExpiry expiry(*log_, *table_, clock_);

  auto next = expiry.run_once();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(**next, clock_.now_ms() + 1000);
  EXPECT_EQ(expiry.expired(), 0u);

  clock_.advance(999ms);
  EXPECT_TRUE(expiry.run_once().ok());
  EXPECT_NE(table_->get(kKind, "system.short"), nullptr);

  clock_.advance(1ms);
  next = expiry.run_once();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(expiry.expired(), 1u);
  EXPECT_EQ(table_->get(kKind, "system.short"), nullptr);  // removed from the table
  EXPECT_NE(table_->get(kKind, "system.long"), nullptr);
  EXPECT_EQ(**next, clock_.now_ms() + 4000);

  clock_.advance(10s);
  ASSERT_TRUE(expiry.run_once().ok());
  EXPECT_EQ(table_->get(kKind, "system.long"), nullptr);
  EXPECT_NE(table_->get(kKind, "system.forever"), nullptr);
  EXPECT_EQ(expiry.expired(), 2u);

  // A restart replays the log to the same state: the expiry records are in it.
  close();
  open();
  EXPECT_EQ(table_->get(kKind, "system.short"), nullptr);
  EXPECT_EQ(table_->get(kKind, "system.long"), nullptr);
  EXPECT_NE(table_->get(kKind, "system.forever"), nullptr);
}

// A pass touches only the keys that are due, taken from the table's deadline index; an update of
// the TTL moves a key's deadline, a delete removes it, and a restart rebuilds the index.
TEST_F(ExpiryTest, APassVisitsOnlyTheDueKeys) {
  const int64_t t0 = clock_.now_ms();
  put_many("ttl", 1000, 10);   // ttl<i> expires at t0 + (i + 1) * 10 ms
  put_many("plain", 2000, 0);  // never expire
  KeyExpiry expiry(*log_, *table_, clock_);

  auto next = expiry.run_once();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(**next, t0 + 10);
  EXPECT_EQ(expiry.visited(), 0u);

  clock_.advance(50ms);  // ttl0..ttl4 are due
  next = expiry.run_once();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(expiry.visited(), 5u);
  EXPECT_EQ(expiry.expired(), 5u);
  EXPECT_EQ(**next, t0 + 60);
  EXPECT_EQ(table_->get(kKind, "system.ttl4"), nullptr);
  EXPECT_NE(table_->get(kKind, "system.ttl5"), nullptr);
  EXPECT_EQ(table_->list(kKind).size(), 2995u);

  // Nothing new is due: a pass visits nothing.
  ASSERT_TRUE(expiry.run_once().ok());
  EXPECT_EQ(expiry.visited(), 5u);

  // ttl5 gets a longer TTL: its deadline moves; ttl6 is deleted: its deadline goes.
  Json moved = *table_->get(kKind, "system.ttl5");
  moved["rev"] = 5000;
  moved["expires_at"] = format_rfc3339_ms(t0 + 100000);
  auto pos =
      log_->produce({definition_record(kKind, moved, clock_.now_ms(), "test"),
                     definition_tombstone(kKind, "system.ttl6", 1006, clock_.now_ms(), "t")});
  ASSERT_TRUE(pos.ok());
  ASSERT_TRUE(table_->wait_applied(pos->back().offset, 5s));
  EXPECT_EQ(table_->expiring(kKind, clock_.now_ms()).next_deadline_ms, t0 + 80);  // ttl7

  clock_.advance(30ms);  // t0 + 80: ttl5 and ttl6 would have been due; only ttl7 is
  ASSERT_TRUE(expiry.run_once().ok());
  EXPECT_EQ(expiry.visited(), 6u);
  EXPECT_EQ(expiry.expired(), 6u);
  EXPECT_NE(table_->get(kKind, "system.ttl5"), nullptr);
  EXPECT_EQ(table_->get(kKind, "system.ttl7"), nullptr);

  // A restart replays the log and rebuilds the same index.
  close();
  open();
  KeyExpiry after(*log_, *table_, clock_);
  auto due = table_->expiring(kKind, clock_.now_ms());
  EXPECT_TRUE(due.due.empty());
  EXPECT_EQ(due.next_deadline_ms, t0 + 90);  // ttl8
  clock_.advance(9920ms);  // t0 + 10000: ttl8 .. ttl999 are due (992 keys), ttl5 is not
  ASSERT_TRUE(after.run_once().ok());
  EXPECT_EQ(after.visited(), 992u);
  EXPECT_EQ(after.expired(), 992u);
  EXPECT_EQ(table_->list(kKind).size(), 2001u);  // the 2000 plain keys and ttl5
  auto rest = table_->expiring(kKind, clock_.now_ms());
  EXPECT_TRUE(rest.due.empty());
  EXPECT_EQ(rest.next_deadline_ms, t0 + 100000);
}

TEST_F(ExpiryTest, CompactionRemovesExpiredAndSupersededValuesFromTheLog) {
  put("gone", 1000, 1);
  put("kept", std::nullopt, 2);
  put("kept", std::nullopt, 3);  // supersedes rev 2
  KeyExpiry expiry(*log_, *table_, clock_);
  clock_.advance(1s);
  ASSERT_TRUE(expiry.run_once().ok());
  auto dropped = log_->compact({std::string(topics::kDefinitions), 0});
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 2);  // the expired key's upsert and the superseded version
  auto reader = log_->reader({std::string(topics::kDefinitions)});
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> left;
  auto records = (*reader)->poll(100, 100ms);
  reader = make_error(Errc::kInternal, "closed");  // a consumer must not outlive its log (close())
  for (const Record& r : records) {
    Envelope e;
    std::string err;
    ASSERT_TRUE(Envelope::parse(r.value, e, err));
    left.push_back(r.key + " " + e.type);
    EXPECT_EQ(r.value.find("v-gone"), std::string::npos);
  }
  EXPECT_EQ(left, (std::vector<std::string>{"key:system.kept definition.upsert",
                                            "key:system.gone definition.delete"}));
  EXPECT_EQ(*log_->compact({std::string(topics::kDefinitions), 0}), 0);
  // The table rebuilt from the compacted log agrees.
  close();
  open();
  EXPECT_EQ(table_->get(kKind, "system.gone"), nullptr);
  ASSERT_NE(table_->get(kKind, "system.kept"), nullptr);
  EXPECT_EQ((*table_->get(kKind, "system.kept"))["rev"], 3);
}

TEST_F(ExpiryTest, AnExpiryDecidedBeforeAnUpdateDoesNotDeleteTheNewVersion) {
  const Json old_version = put("k", 1000, 10);
  clock_.advance(2s);
  // The expiry was decided on the old version, but an update (new rev, no TTL) lands first.
  put("k", std::nullopt, 11);
  auto pos = log_->produce({expiry_record(old_version, clock_.now_ms(), "test")});
  ASSERT_TRUE(pos.ok());
  ASSERT_TRUE(table_->wait_applied(pos->back().offset, 5s));
  auto live = table_->get(kKind, "system.k");
  ASSERT_NE(live, nullptr);
  EXPECT_EQ((*live)["rev"], 11);
  // The same record for the current version deletes it.
  pos = log_->produce({expiry_record(*live, clock_.now_ms(), "test")});
  ASSERT_TRUE(pos.ok());
  ASSERT_TRUE(table_->wait_applied(pos->back().offset, 5s));
  EXPECT_EQ(table_->get(kKind, "system.k"), nullptr);
}

TEST_F(ExpiryTest, AnExpiryWaitsForTheKeysWriterAndRereadsTheKey) {
  put("k", 1000, 1);
  clock_.advance(2s);  // due
  KeyHolds holds;
  KeyExpiry expiry(*log_, *table_, clock_, 1000ms,
                   [&](std::string_view ref) { return holds.hold(ref); });
  // A writer holds the key and removes the TTL while the expiry runs. Whichever of the two gets
  // the key first, the outcome is the same: the update wins and no expiry is written.
  auto writer = holds.hold("system.k");
  auto run = std::async(std::launch::async, [&] { return expiry.run_once(); });
  put("k", std::nullopt, 2);
  std::thread([w = std::move(writer)]() mutable { w.reset(); }).join();  // released elsewhere
  ASSERT_TRUE(run.get().ok());
  EXPECT_EQ(expiry.expired(), 0u);
  ASSERT_NE(table_->get(kKind, "system.k"), nullptr);
  EXPECT_EQ((*table_->get(kKind, "system.k"))["rev"], 2);
  // So compaction keeps the update, and a restart agrees.
  ASSERT_TRUE(log_->compact({std::string(topics::kDefinitions), 0}).ok());
  close();
  open();
  ASSERT_NE(table_->get(kKind, "system.k"), nullptr);
}

TEST(KeyHoldsTest, OneHolderPerKeyReleasedFromAnyThread) {
  KeyHolds holds(8);
  auto a = holds.hold("system.a");
  std::atomic<bool> second{false};
  std::thread waiter([&] {
    auto again = holds.hold("system.a");
    second.store(true);
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(second.load());  // still held
  std::thread([h = std::move(a)]() mutable { h.reset(); }).join();
  waiter.join();
  EXPECT_TRUE(second.load());
  // A handle that outlives its KeyHolds releases harmlessly.
  std::shared_ptr<void> late;
  {
    KeyHolds gone(4);
    late = gone.hold("x");
  }
  late.reset();
}

TEST_F(ExpiryTest, ActionAndTemplateViews) {
  auto write = [&](Json key, const Json& value, bool encrypted) {
    set_value(key, value, encrypted, cipher());
    auto pos = log_->produce({definition_record(kKind, key, clock_.now_ms(), "test")});
    ASSERT_TRUE(pos.ok());
    ASSERT_TRUE(table_->wait_applied(pos->back().offset, 5s));
  };
  write({{"ref", "pack.p.api_key"}, {"local_ref", "api_key"}, {"expires_at", nullptr}},
        "sk-pack-secret", true);
  write({{"ref", "pack.p.region"}, {"local_ref", "region"}}, "eu", false);
  write({{"ref", "action.p.act.api_key"}, {"local_ref", "api_key"}}, "sk-action-secret", true);
  write({{"ref", "pack.other.api_key"}, {"local_ref", "api_key"}}, "sk-other", true);
  write({{"ref", "pack.p.gone"},
         {"local_ref", "gone"},
         {"expires_at", format_rfc3339_ms(clock_.now_ms())}},
        "expired", false);
  write({{"ref", "system.url"}, {"local_ref", "url"}}, "https://x", false);
  write({{"ref", "identity.ada.token"}, {"local_ref", "token"}}, "ada-token", true);

  auto keys = keys_for_action(*table_, "p", "p.act", clock_.now_ms(), cipher());
  EXPECT_EQ(keys.values, (Json{{"api_key", "sk-action-secret"}, {"region", "eu"}}));
  EXPECT_EQ(keys.secrets.size(), 2u);  // both encrypted keys, not the plain one
  EXPECT_TRUE(keys.errors.empty());

  auto ctx = template_context(*table_, "p", "ada", clock_.now_ms(), cipher());
  EXPECT_EQ(ctx.root["system"]["url"], "https://x");
  EXPECT_EQ(ctx.root["url"], "https://x");
  EXPECT_EQ(ctx.root["pack"]["p"]["api_key"], "sk-pack-secret");
  EXPECT_FALSE(ctx.root["pack"].contains("other"));
  EXPECT_FALSE(ctx.root["pack"]["p"].contains("gone"));
  EXPECT_EQ(ctx.root["identity"]["ada"]["token"], "ada-token");
  EXPECT_EQ(ctx.secrets.size(), 2u);
}

TEST(Sealed, SecretParametersLeaveTheStoredConfig) {
  const Json schema = {{"user", {{"type", "string"}}},
                       {"password", {{"type", "string"}, {"secret", true}}}};
  EXPECT_EQ(secret_fields(schema), (std::set<std::string>{"password"}));
  EXPECT_EQ(
      secret_fields(Json{{"type", "object"}, {"properties", {{"token", {{"secret", true}}}}}}),
      (std::set<std::string>{"token"}));

  const Json config = {
      {"user", "ada"}, {"password", "p4ss-word"}, {"url", "https://u:sk-from-key@host"}, {"n", 3}};
  auto sealed = seal_config(config, secret_fields(schema), {"sk-from-key", "abc"}, cipher(),
                            sealed_aad("execution", 7));
  ASSERT_TRUE(sealed.sealed.has_value());
  EXPECT_EQ(sealed.config["user"], "ada");
  EXPECT_TRUE(is_marker(sealed.config["password"]));
  EXPECT_TRUE(is_marker(sealed.config["url"]));
  EXPECT_EQ(sealed.config["n"], 3);
  EXPECT_EQ(sealed.config.dump().find("p4ss"), std::string::npos);
  EXPECT_EQ(sealed.sealed->find("p4ss"), std::string::npos);
  EXPECT_EQ(redaction_marker(), (Json{{"$attune_secret", true}, {"redacted", true}}));

  auto open = unseal_config(sealed.config, *sealed.sealed, cipher(), sealed_aad("execution", 7));
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(*open, config);
  // Bound to its record.
  EXPECT_FALSE(
      unseal_config(sealed.config, *sealed.sealed, cipher(), sealed_aad("execution", 8)).ok());
  // Nothing secret: nothing sealed.
  EXPECT_FALSE(seal_config(Json{{"a", 1}}, {}, {}, cipher(), "x").sealed.has_value());

  Json payload = {{"token", "t"}, {"other", 1}};
  redact_fields(payload, {"token", "absent"});
  EXPECT_TRUE(is_marker(payload["token"]));
  EXPECT_FALSE(payload.contains("absent"));
}

}  // namespace
}  // namespace attune::keystore
