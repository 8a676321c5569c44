# The GSUP test peer of the osmo-hlr tests (tests/peers/gsup_peer.c): asks
# osmo-hlr for authentication vectors and computes the device's RES with
# src/core/milenage.c.  Included from tests/CMakeLists.txt.
add_executable(gsup_peer ${CMAKE_CURRENT_LIST_DIR}/gsup_peer.c)
target_link_libraries(gsup_peer PRIVATE stbcommon PkgConfig::OSMOGSUP)
list(APPEND STB_TEST_ENV STB_GSUP_PEER=$<TARGET_FILE:gsup_peer>)
