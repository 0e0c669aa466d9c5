// Operator accounts (issue 19): Argon2id hashes (never stored or audited in clear), a wrong name
// and a wrong password refused alike, disabled accounts refused, password changes and role
// changes recorded in the account's audit log, and each operator's action log complete under
// concurrent appends, on both event-store backends.
#include "qianmian/campaign/operators.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "policy_test_util.h"

namespace qm::campaign {
namespace {

using policy::testing::BackendStarted;
using policy::testing::SkipReason;
using policy::testing::StoreFor;
using policy::testing::TempDir;

TEST(OperatorNamesTest, NamesRolesAndPasswordsAreChecked) {
  EXPECT_TRUE(CheckOperatorName("alice.w-2").ok());
  EXPECT_FALSE(CheckOperatorName("").ok());
  EXPECT_FALSE(CheckOperatorName("a b").ok());
  EXPECT_FALSE(CheckOperatorName("_unknown").ok());  // reserved for the log of unknown names
  EXPECT_FALSE(CheckOperatorName(std::string(65, 'a')).ok());
  EXPECT_FALSE(CheckOperatorName("张三").ok());
  EXPECT_TRUE(CheckPassword("alice", "long enough 密码").ok());
  EXPECT_NE(CheckPassword("alice", "short").message().find("at least 10"), std::string::npos);
  EXPECT_FALSE(CheckPassword("alice.long.name", "alice.long.name").ok());
  EXPECT_FALSE(CheckPassword("alice", std::string("bad \xff utf8 password")).ok());
  EXPECT_FALSE(CheckPassword("alice", std::string(257, 'x')).ok());
  for (Role r : {Role::kViewer, Role::kMarketer, Role::kApprover, Role::kServiceAgent, Role::kAdmin}) {
    EXPECT_EQ(ParseRole(RoleName(r)), r);
  }
  EXPECT_FALSE(ParseRole("root").has_value());
}

class OperatorsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (const std::string why = SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(BackendStarted(GetParam())) << "could not start a private redis-server";
    auto s = policy::EventStore::Open(StoreFor(GetParam(), dir_.path()));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    ops_ = std::make_unique<Operators>(store_.get());
  }
  TempDir dir_;
  std::unique_ptr<policy::EventStore> store_;
  std::unique_ptr<Operators> ops_;
  const Actor admin_{"root", "test", 1796500000000};
};

TEST_P(OperatorsTest, LoginsNeedTheRightPasswordOfAnEnabledAccount) {
  ASSERT_TRUE(ops_->Add("alice", Role::kMarketer, "alice-password-1", admin_).ok());
  EXPECT_EQ(ops_->Add("alice", Role::kAdmin, "another-password", admin_).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ops_->Add("bob", Role::kAdmin, "short", admin_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ops_->Add("bob", Role::kAdmin, "bob-password-1", Actor{}).status().code(), StatusCode::kInvalidArgument);

  Result<OperatorAccount> a = ops_->Verify("alice", "alice-password-1");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->role, Role::kMarketer);
  EXPECT_EQ(a->created_by, "root");
  // A wrong password and an unknown name: the same refusal, in about the same time (both run
  // Argon2id), so a login form does not reveal which names exist.
  const auto t0 = std::chrono::steady_clock::now();
  Result<OperatorAccount> wrong = ops_->Verify("alice", "alice-password-2");
  const auto t1 = std::chrono::steady_clock::now();
  Result<OperatorAccount> nobody = ops_->Verify("mallory", "alice-password-1");
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(wrong.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(nobody.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(wrong.status().message(), nobody.status().message());
  EXPECT_GT((t2 - t1) * 5, (t1 - t0)) << "an unknown name is answered much faster than a wrong password";
  EXPECT_EQ(ops_->Verify("bad name", "x").status().code(), StatusCode::kPermissionDenied);

  // The record holds an Argon2id hash, never the password.
  Result<policy::GovernedRecord> rec = store_->ReadRecord("operators", "alice");
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->value.find("alice-password-1"), std::string::npos);
  EXPECT_NE(rec->value.find("$argon2id$"), std::string::npos);

  ASSERT_TRUE(ops_->SetDisabled("alice", true, admin_).ok());
  EXPECT_EQ(ops_->Verify("alice", "alice-password-1").status().message(), "account disabled");
  ASSERT_TRUE(ops_->SetDisabled("alice", false, admin_).ok());
  EXPECT_TRUE(ops_->Verify("alice", "alice-password-1").ok());
  EXPECT_EQ(ops_->SetDisabled("nobody", true, admin_).status().code(), StatusCode::kNotFound);
}

TEST_P(OperatorsTest, PasswordAndRoleChangesAreAuditedWithoutTheHash) {
  ASSERT_TRUE(ops_->Add("bob", Role::kApprover, "bob-password-1", admin_).ok());
  Actor later = admin_;
  later.now += 60000;
  Result<OperatorAccount> changed = ops_->SetPassword("bob", "bob-password-2", later);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->password_set_at, later.now);  // sessions opened before it end (console.cc)
  EXPECT_FALSE(ops_->Verify("bob", "bob-password-1").ok());
  EXPECT_TRUE(ops_->Verify("bob", "bob-password-2").ok());
  ASSERT_TRUE(ops_->SetRole("bob", Role::kViewer, later).ok());
  EXPECT_EQ(ops_->Get("bob")->role, Role::kViewer);
  EXPECT_EQ(ops_->SetPassword("bob", "short", later).status().code(), StatusCode::kInvalidArgument);

  Result<std::vector<std::string>> audit = ops_->AccountAudit("bob");
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 3u);
  EXPECT_NE((*audit)[0].find("\"action\":\"add\""), std::string::npos);
  EXPECT_NE((*audit)[1].find("\"action\":\"passwd\""), std::string::npos);
  EXPECT_NE((*audit)[2].find("\"role\":\"viewer\""), std::string::npos);
  for (const std::string& e : *audit) {
    EXPECT_EQ(e.find("argon2"), std::string::npos) << e;
    EXPECT_EQ(e.find("password-"), std::string::npos) << e;
  }
  Result<std::vector<OperatorAccount>> all = ops_->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].revision, 3u);
}

TEST_P(OperatorsTest, ConcurrentActionsAreAllLoggedNoneLost) {
  ASSERT_TRUE(ops_->Add("carol", Role::kServiceAgent, "carol-password-1", admin_).ok());
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        OperatorAction a{1796500000000 + i, "console:10.0.0." + std::to_string(t), "lookup",
                         "customer C" + std::to_string(t * 100 + i)};
        if (!ops_->LogAction("carol", a).ok()) ++failed;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  Result<std::vector<OperatorAction>> log = ops_->Actions("carol");
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), static_cast<size_t>(kThreads * kEach));
  std::set<std::string> seen;
  for (const OperatorAction& a : *log) seen.insert(a.detail);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kEach));  // none lost, none twice
  // A name that is no account (or no name at all) logs under "_unknown", the name in the detail.
  ASSERT_TRUE(ops_->LogAction("not a name!", {1, "console:x", "login_failed", "wrong name or password"}).ok());
  ASSERT_TRUE(ops_->LogAction("mallory", {2, "console:x", "login_failed", "wrong name or password"}).ok());
  Result<std::vector<OperatorAction>> unknown = ops_->Actions("_unknown");
  ASSERT_TRUE(unknown.ok());
  ASSERT_EQ(unknown->size(), 2u);
  EXPECT_NE((*unknown)[0].detail.find("not a name!"), std::string::npos);
  EXPECT_NE((*unknown)[1].detail.find("mallory"), std::string::npos);
  EXPECT_TRUE(ops_->Actions("mallory")->empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, OperatorsTest, ::testing::Values("embedded", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qm::campaign
