# tools.cmake: the console client library, the operator CLI fuseboxctl and
# the gateway simulator fusebox-devsim. Included from dispatcher/.
add_library(fbx_client STATIC ${CMAKE_CURRENT_LIST_DIR}/client.c)
target_include_directories(fbx_client PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(fbx_client PUBLIC fbx_proto fbx_keys PkgConfig::ZMQ)

# fuseboxctl: one file per verb group under ctl/ (ctl/ctl.h: what they share)
set(FBX_CTL_DIR ${CMAKE_CURRENT_LIST_DIR}/ctl)
add_executable(fuseboxctl ${FBX_CTL_DIR}/main.c ${FBX_CTL_DIR}/call.c
  ${FBX_CTL_DIR}/text.c ${FBX_CTL_DIR}/submit.c ${FBX_CTL_DIR}/query.c
  ${FBX_CTL_DIR}/devices.c ${FBX_CTL_DIR}/controls.c ${FBX_CTL_DIR}/ops.c
  ${FBX_CTL_DIR}/rollback.c ${FBX_CTL_DIR}/replay.c ${FBX_CTL_DIR}/export.c
  ${FBX_CTL_DIR}/audit.c ${FBX_CTL_DIR}/certs.c ${FBX_CTL_DIR}/access.c
  ${FBX_CTL_DIR}/fleet.c ${CMAKE_CURRENT_LIST_DIR}/ctl_json.c)
# jansson writes --json and reads the export's JSON Lines (issue 12 item 6)
target_link_libraries(fuseboxctl PRIVATE fbx_client fbx_json
  PkgConfig::JANSSON)

# fusebox-devsim: devsim/ (sim.h: what its files share)
set(FBX_SIM_DIR ${CMAKE_CURRENT_LIST_DIR}/devsim)
add_executable(fusebox-devsim ${FBX_SIM_DIR}/main.c ${FBX_SIM_DIR}/sim.c
  ${FBX_SIM_DIR}/storm.c ${FBX_SIM_DIR}/report.c ${FBX_SIM_DIR}/enroll.c
  ${FBX_SIM_DIR}/fleet.c ${FBX_SIM_DIR}/simtab.c)
target_link_libraries(fusebox-devsim PRIVATE fbx_client m)
