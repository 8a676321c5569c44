# qualifyd's osmo-hlr backend (hss_osmo.c, hss_osmo_vty.c) against a
# scripted VTY.  Included from tests/unit/CMakeLists.txt.
add_executable(test_hss_osmo test_hss_osmo.c ${PROJECT_SOURCE_DIR}/src/qualifyd/hss_osmo.c
  ${PROJECT_SOURCE_DIR}/src/qualifyd/hss_osmo_vty.c)
target_include_directories(test_hss_osmo PRIVATE ${PROJECT_SOURCE_DIR}/src/qualifyd)
target_link_libraries(test_hss_osmo PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA)
add_test(NAME unit.hss_osmo COMMAND test_hss_osmo)
set_tests_properties(unit.hss_osmo PROPERTIES LABELS unit TIMEOUT 120)
