#include "engine_fixture.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cstdio>
#include <cstdlib>

#include "qianmian/artifacts/manifest.h"
#include "qianmian/synth/generate.h"

namespace qm::serving::testing {

Status BuildFixture(const Fixture& f) {
  synth::GenerateOptions g;
  g.out_dir = f.data;
  g.customers = 1500;
  g.products = 40;
  g.contents = 240;
  g.days = 20;
  g.seed = 11;
  g.threads = 1;
  g.oracle_sample = 200;
  QM_RETURN_IF_ERROR(synth::GenerateBank(g).status());
  training::TrainConfig c;
  c.max_eval_customers = 100;
  c.refit = false;  // the serving tests need the versions, not a second fit on every event
  c.two_tower.epochs = 1;
  c.two_tower.embedding_dim = 32;
  c.two_tower.hidden = 64;
  c.ranker.epochs = 1;
  c.ranker.hidden1 = 32;
  c.ranker.hidden2 = 16;
  DataConfig data;
  data.dir = f.data;
  for (int run = 0; run < 2; ++run) {
    c.seed = 42 + run;
    c.two_tower.seed = c.ranker.seed = c.seed;
    // The second (current) version searches its 240 contents with an IVF index, as a large
    // catalogue does; the first keeps exact search.
    c.exact_index_max = run == 0 ? 30000 : 100;
    // Only the second has an item-to-item table (the first searches neighbours per seed).
    c.neighbours = run == 0 ? 0 : 16;
    QM_RETURN_IF_ERROR(training::Train(f.data, data, f.artifacts, c, "{}").status());
  }
  return Status::Ok();
}

const Fixture& SharedFixture() {
  static Fixture f = [] {
    Fixture x;
    std::error_code ec;
    auto mtime = fs::last_write_time("/proc/self/exe", ec);
    const auto stamp = ec ? 0 : mtime.time_since_epoch().count();
    x.dir = (fs::path(::testing::TempDir()) /
             ("qm_serving_fixture_" + std::to_string(::getuid()) + "_" + std::to_string(stamp)))
                .string();
    x.data = x.dir + "/bank";
    x.artifacts = x.dir + "/art";
    fs::create_directories(x.dir);
    const std::string lock_path = x.dir + ".lock";
    int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
    if (fd >= 0) ::flock(fd, LOCK_EX);
    if (!fs::exists(x.dir + "/READY")) {
      // Fixtures of earlier builds of this binary, unused for an hour, go.
      const std::string prefix = "qm_serving_fixture_" + std::to_string(::getuid()) + "_";
      for (const auto& entry : fs::directory_iterator(::testing::TempDir(), ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) != 0 || entry.path().string() == x.dir || entry.path().string() == lock_path)
          continue;
        std::error_code e2;
        auto age = fs::file_time_type::clock::now() - fs::last_write_time(entry.path(), e2);
        if (!e2 && age > std::chrono::hours(1)) fs::remove_all(entry.path(), e2);
      }
      fs::remove_all(x.data);
      fs::remove_all(x.artifacts);
      Status st = BuildFixture(x);
      if (!st.ok()) {
        std::fprintf(stderr, "fixture: %s\n", st.ToString().c_str());
        std::abort();
      }
      std::ofstream(x.dir + "/READY") << "ok\n";
    }
    if (fd >= 0) {
      ::flock(fd, LOCK_UN);
      ::close(fd);
    }
    auto versions = artifacts::ListVersions(x.artifacts);
    if (!versions.ok() || versions->size() < 2) std::abort();
    x.v1 = (*versions)[0];
    x.v2 = (*versions)[1];
    return x;
  }();
  return f;
}

const Dataset& SharedBank() {
  static Dataset ds = [] {
    DataConfig c;
    c.dir = SharedFixture().data;
    auto r = LoadDataset(c.dir, c);
    QM_CHECK(r.ok());
    return std::move(r).value();
  }();
  return ds;
}

std::vector<std::string> PushableCustomers(size_t n) {
  const Dataset& ds = SharedBank();
  std::vector<std::string> ids;
  for (size_t c = 0; c < ds.customers.size() && ids.size() < n; ++c) {
    if (!(ds.customers[c].opt_out >> kWechatPush & 1)) ids.push_back(ds.customers[c].id);
  }
  return ids;
}

EngineOptions OptionsFor(const std::string& scratch) {
  const Fixture& f = SharedFixture();
  EngineOptions o;
  o.data.dir = f.data;
  o.artifacts_root = f.artifacts;
  o.store.path = scratch + "/store";
  o.store.sync = false;
  o.serving.seed_store = false;
  return o;
}

void EngineTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  scratch_ = (fs::path(::testing::TempDir()) /
              ("qm_serving_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name()))
                 .string();
  fs::remove_all(scratch_);
  fs::create_directories(scratch_);
}

void EngineTest::TearDown() {
  engine_.reset();
  fs::remove_all(scratch_);
}

Engine& EngineTest::Open(EngineOptions o) {
  auto e = Engine::Open(std::move(o));
  if (!e.ok()) ADD_FAILURE() << e.status().ToString();
  QM_CHECK(e.ok());
  engine_ = std::move(e).value();
  return *engine_;
}

Response EngineTest::Recommend(const std::string& customer, int count, const std::string& channel, bool dry_run,
                               const std::string& request_id) {
  Request r;
  r.customer_id = customer;
  r.channel = channel;
  r.count = count;
  r.now_ms = kNow;
  r.dry_run = dry_run;
  r.debug = true;
  r.request_id = request_id;
  std::vector<Response> out;
  Status st = engine_->Recommend({r}, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out.size(), 1u);
  return out.empty() ? Response() : out[0];
}

}  // namespace qm::serving::testing
