# Third-party packages, all from Debian (scripts/setup.sh installs them).
# Each module links what it needs PRIVATE; no public header includes these libraries.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED)   # before Faiss: its CMake config needs OpenMP::OpenMP_CXX
find_package(faiss REQUIRED)
find_package(Torch REQUIRED)   # libtorch 1.13 (CPU): ${TORCH_LIBRARIES}
find_package(tomlplusplus REQUIRED)
find_package(date REQUIRED)
find_package(CLI11 REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(Eigen3 REQUIRED NO_MODULE)
find_package(OpenSSL REQUIRED)  # SHA-256 of artifact files
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)
find_package(RocksDB REQUIRED)
find_library(HIREDIS_LIBRARY hiredis REQUIRED)
find_library(HTTPLIB_LIBRARY cpp-httplib REQUIRED)  # the server's HTTP port (server/src/http.cc only)
find_library(SODIUM_LIBRARY sodium REQUIRED)  # operator passwords (Argon2id) and console tokens (campaign/src/operators.cc)
find_path(HIREDIS_INCLUDE_DIR hiredis/hiredis.h REQUIRED)
find_package(cppzmq REQUIRED)   # ZeroMQ + cppzmq: target cppzmq (server and client only)
find_package(msgpack REQUIRED PATHS /usr/lib/x86_64-linux-gnu/cmake/msgpackc-cxx)  # target msgpackc-cxx
find_library(OPENBLAS_LIBRARY openblas REQUIRED)  # sgemm of the ranker's inference path (rank/src/cross_net_inference.cc only)
find_library(XGBOOST_LIBRARY xgboost REQUIRED)  # gradient-boosted trees ranker (rank/src/gbdt_ranker.cc only)
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h REQUIRED)
find_package(Boost 1.74 REQUIRED)  # header-only Boost.Math: the effect report's t and chi-square (experiment/)
