# Third-party packages, all from Debian bookworm (see ../shared/ENVIRONMENT.md).
include_guard(GLOBAL)
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(spdlog REQUIRED)
find_package(RocksDB REQUIRED)
find_package(GTest REQUIRED)
find_package(CLI11 REQUIRED)
find_package(prometheus-cpp REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(date REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(PISTACHE REQUIRED IMPORTED_TARGET libpistache)
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)
# jemalloc for the attune binary: JSON-heavy stages allocate many small objects on several threads;
# glibc malloc showed up at ~15% of server CPU in the webhook benchmark (tests/bench/README.md).
pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
