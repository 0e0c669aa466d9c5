// qm_testing: fixtures shared by the test binaries of several modules (serving, push, server).
// Depends on synth (the generated bank), training (the trained versions) and serving (the
// engine), and on GoogleTest; never on tools.
//
// engine_fixture.h: a tiny generated bank with two trained versions, built once per test binary
// build and shared by every engine test (cached under the temp folder, keyed by the test
// binary's mtime), and a gtest fixture with a scratch folder and an engine over it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/dataset.h"
#include "qianmian/serving/engine.h"
#include "qianmian/synth/bank.h"
#include "qianmian/training/pipeline.h"

namespace qm::serving::testing {

namespace fs = std::filesystem;

// Noon (Asia/Shanghai) on the day after the generated period.
inline constexpr TimeMs kNow = synth::kDefaultGenerateEnd + 12 * kMsPerHour;

struct Fixture {
  std::string dir;        // holds bank/ and art/
  std::string data;       // the bank
  std::string artifacts;  // two versions; CURRENT names the second (IVF over contents, neighbour table)
  std::string v1, v2;
};

// Generates the bank into f.data and trains its two versions into f.artifacts.
Status BuildFixture(const Fixture& f);

// The shared fixture (built on first use; later test processes reuse it). Thread-safe.
const Fixture& SharedFixture();

// The shared bank as the engine loads it (loaded once per test process).
const Dataset& SharedBank();

// The ids of the shared bank's first `n` customers who have not opted out of wechat_push.
std::vector<std::string> PushableCustomers(size_t n);

// Options for an engine over the shared bank with its own event store (and, when given, its
// own copy of the artifact root).
EngineOptions OptionsFor(const std::string& scratch);

// A fresh scratch folder per test.
class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  Engine& Open(EngineOptions o);
  Engine& Open() { return Open(OptionsFor(scratch_)); }

  // One request at kNow with debug on (a dry run unless told); a failure is reported and gives an
  // empty Response.
  Response Recommend(const std::string& customer, int count = 10, const std::string& channel = "app_home",
                     bool dry_run = true, const std::string& request_id = "");

  std::string scratch_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace qm::serving::testing
