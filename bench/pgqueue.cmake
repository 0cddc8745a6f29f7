# pgqueue.cmake: bench_pgqueue, the PostgreSQL job-queue baseline of the
# fan-out benchmark (run it with bench/pg.sh). Included from
# bench/CMakeLists.txt; built only when libpq is found (Debian: libpq-dev).
pkg_check_modules(PQ IMPORTED_TARGET libpq)
if(PQ_FOUND)
  find_package(Threads REQUIRED)
  add_executable(bench_pgqueue ${CMAKE_CURRENT_LIST_DIR}/pgqueue.c)
  # fbx_keys: the CURVE server key pair (fuseboxd init's keys/server.key)
  target_link_libraries(bench_pgqueue PRIVATE fbx_proto fbx_keys
    PkgConfig::PQ PkgConfig::ZMQ Threads::Threads)
  # bench/pg.sh makes the keys with fuseboxd init and starts the simulator
  add_dependencies(bench_pgqueue fuseboxd fusebox-devsim)
else()
  message(STATUS "libpq not found: bench_pgqueue not built "
    "(apt-get install libpq-dev, or run bench/pg.sh)")
endif()
