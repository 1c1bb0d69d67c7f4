// AES-256-GCM sealing, the key list format, and the keyring (data keys
// wrapped by key-encryption keys) on a real SQLite store.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "crypto/aead.h"
#include "crypto/kek.h"
#include "crypto/keyring.h"
#include "store/sqlite/sqlite_store.h"

namespace continuum {
namespace {

TEST(AeadTest, OpensOnlyWithTheSameKeyAndAssociatedData) {
  AeadKey key = random_aead_key();
  auto sealed = aead_seal(key, "attack at dawn", "tenant/items/1");
  ASSERT_TRUE(sealed.is_ok());
  EXPECT_EQ(sealed->size(), kAeadNonceBytes + 14 + kAeadTagBytes);
  EXPECT_EQ(sealed->find("attack"), std::string::npos);
  EXPECT_EQ(*aead_open(key, *sealed, "tenant/items/1"), "attack at dawn");
  EXPECT_EQ(aead_open(key, *sealed, "tenant/items/2").status().code(), Code::kDataLoss) << "moved to another row";
  EXPECT_EQ(aead_open(random_aead_key(), *sealed, "tenant/items/1").status().code(), Code::kDataLoss);
  for (size_t i = 0; i < sealed->size(); ++i) {
    std::string damaged = *sealed;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    EXPECT_EQ(aead_open(key, damaged, "tenant/items/1").status().code(), Code::kDataLoss) << "byte " << i;
  }
  EXPECT_EQ(aead_open(key, sealed->substr(0, 20), "tenant/items/1").status().code(), Code::kDataLoss);
  auto empty = aead_seal(key, "", "aad");
  EXPECT_EQ(*aead_open(key, *empty, "aad"), "");
}

TEST(AeadTest, EverySealUsesAFreshNonce) {
  AeadKey key = random_aead_key();
  EXPECT_NE(*aead_seal(key, "same", "aad"), *aead_seal(key, "same", "aad"));
}

TEST(KeyListTest, ParsesVersionsAndRejectsMalformedLines) {
  std::string hex(64, 'a');
  auto keys = parse_key_list("# comment\n1 " + hex + "\n\n2 " + std::string(64, 'B') + "  # newest\n");
  ASSERT_TRUE(keys.is_ok()) << keys.status().to_string();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_EQ(keys->rbegin()->first, 2);
  EXPECT_TRUE(parse_key_list("1 " + hex + ";2 " + hex).is_ok()) << "';' separates keys in an env var";
  for (const std::string& bad : std::vector<std::string>{"", "# only a comment", "1 " + hex.substr(1), "0 " + hex,
                                 "x " + hex, "1 " + hex + " extra", "1 " + hex + "\n1 " + hex,
                                 "1 " + std::string(63, 'a') + "g"}) {
    EXPECT_EQ(parse_key_list(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("continuum-keyring-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = SqliteStore::open(SqliteStoreOptions{(dir_ / "db").string()}, clock_, nullptr);
    ASSERT_TRUE(store.is_ok());
    store_ = std::move(*store);
    open_keyring();
  }
  void TearDown() override {
    keyring_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open_keyring() {
    keyring_.reset();
    auto keks = LocalKeyEncryptionKeys::open("file:" + key_file(), read_process_env);
    ASSERT_TRUE(keks.is_ok()) << keks.status().to_string();
    keks_ = std::move(*keks);
    keyring_ = std::make_unique<Keyring>(*store_, *keks_, clock_);
  }
  std::string key_file() const { return (dir_ / "master.key").string(); }

  std::filesystem::path dir_;
  ManualClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<LocalKeyEncryptionKeys> keks_;
  std::unique_ptr<Keyring> keyring_;
};

TEST_F(KeyringTest, KeyFileIsCreatedPrivate) {
  struct stat info {};
  ASSERT_EQ(::stat(key_file().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  EXPECT_EQ(keks_->current_version(), 1);
}

TEST_F(KeyringTest, DataKeyIsCreatedOnceAndSurvivesRestart) {
  auto first = keyring_->current("t1", "tenant");
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ((*first)->version, 1);
  EXPECT_EQ((*keyring_->current("t1", "tenant"))->key, (*first)->key);
  EXPECT_NE((*keyring_->current("t2", "tenant"))->key, (*first)->key) << "one key per tenant";
  open_keyring();
  auto reloaded = keyring_->find("t1", "tenant", 1);
  ASSERT_TRUE(reloaded.is_ok());
  EXPECT_EQ((*reloaded)->key, (*first)->key);
  auto stored = store_->list_data_keys("t1");
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].wrapped_key.find(std::string(aead_key_bytes((*first)->key))), std::string::npos)
      << "only the wrapped key is stored";
}

TEST_F(KeyringTest, RotationAddsVersionsAndRewrapsUnderTheNewestKek) {
  auto old_key = *keyring_->current("t1", "tenant");
  ASSERT_TRUE(keyring_->current("t1", "user:alice").is_ok());
  ASSERT_EQ(*add_key_to_file(key_file()), 2);
  auto report = keyring_->rotate("t1");
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->kek_version, 2);
  EXPECT_EQ(report->data_keys_created, 2);
  EXPECT_EQ(report->data_keys_rewrapped, 2);
  EXPECT_EQ((*keyring_->current("t1", "tenant"))->version, 2) << "new writes use the new version";
  EXPECT_EQ((*keyring_->find("t1", "tenant", 1))->key, old_key->key) << "old data stays readable";
  auto records = store_->list_data_keys("t1");
  ASSERT_EQ(records->size(), 4u);
  for (const auto& record : *records) EXPECT_EQ(record.kek_version, 2);

  // Only the newest KEK left: everything was rewrapped, so all still unwraps.
  std::string newest_line;
  {
    std::ifstream file(key_file());
    for (std::string line; std::getline(file, line);) {
      if (line.starts_with("2 ")) newest_line = line;
    }
  }
  std::ofstream(key_file(), std::ios::trunc) << newest_line << "\n";
  open_keyring();
  EXPECT_EQ((*keyring_->find("t1", "tenant", 1))->key, old_key->key);
}

TEST_F(KeyringTest, ShreddingAUserDestroysOnlyTheirKeys) {
  ASSERT_TRUE(keyring_->current("t1", "user:alice").is_ok());
  ASSERT_TRUE(keyring_->current("t1", "user:bob").is_ok());
  auto report = keyring_->shred("t1", "user:alice");
  ASSERT_TRUE(report.is_ok());
  ASSERT_EQ(report->destroyed.size(), 1u);
  EXPECT_EQ(report->destroyed[0].scope, "user:alice");
  EXPECT_EQ(keyring_->find("t1", "user:alice", 1).status().code(), Code::kDataLoss);
  EXPECT_TRUE(keyring_->find("t1", "user:bob", 1).is_ok());
  open_keyring();
  EXPECT_EQ(keyring_->find("t1", "user:alice", 1).status().code(), Code::kDataLoss) << "after a restart too";
  EXPECT_EQ((*keyring_->current("t1", "user:alice"))->version, 2) << "new data gets a new key";
  EXPECT_EQ(keyring_->shred("t1", "")->destroyed.size(), 2u) << "tenant: every live key";
}

TEST_F(KeyringTest, WrongKekIsAnIntegrityErrorNotGarbage) {
  ASSERT_TRUE(keyring_->current("t1", "tenant").is_ok());
  std::filesystem::remove(key_file());
  open_keyring();  // a new random KEK version 1
  EXPECT_EQ(keyring_->find("t1", "tenant", 1).status().code(), Code::kDataLoss);
}

}  // namespace
}  // namespace continuum
