# Every dependency comes from a Debian package (see scripts/lib.sh for the package names).
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(CLI11 CONFIG REQUIRED)
if(ECCL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(ECCL_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# RDMA libraries: detected now, used by the verbs and libfabric transports.
find_package(PkgConfig REQUIRED)
pkg_check_modules(IBVERBS IMPORTED_TARGET libibverbs)
pkg_check_modules(LIBFABRIC IMPORTED_TARGET libfabric)
