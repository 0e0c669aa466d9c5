// The main() of every unit-test binary: gtest, with the allocator tuned as in the program
// (training inside the tests would otherwise run about 2x slower; see core/allocator.h).
#include <gtest/gtest.h>

#include "qianmian/core/allocator.h"

int main(int argc, char** argv) {
  qm::ConfigureAllocatorForTensors();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
