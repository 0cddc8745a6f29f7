# pgqueue.cmake: bench_pgqueue, the PostgreSQL job-queue baseline of the
# fan-out benchmark (run it with bench/pg.sh). Included from
# bench/CMakeLists.txt; built only when libpq is found (Debian: libpq-dev).
pkg_check_modules(PQ IMPORTED_TARGET libpq)
if(PQ_FOUND)
  find_package(Threads REQUIRED)
  add_executable(bench_pgqueue ${CMAKE_CURRENT_LIST_DIR}/pgqueue.c)
  target_link_libraries(bench_pgqueue PRIVATE fbx_proto PkgConfig::PQ
    PkgConfig::ZMQ Threads::Threads)
else()
  message(STATUS "libpq not found: bench_pgqueue not built "
    "(apt-get install libpq-dev, or run bench/pg.sh)")
endif()
