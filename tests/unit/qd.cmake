# qualifyd (flow D): src/core/qualify.c; the embedded HSS.
add_executable(test_qualify test_qualify.c)
target_link_libraries(test_qualify PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA)
add_test(NAME unit.qualify COMMAND test_qualify)
set_tests_properties(unit.qualify PROPERTIES LABELS unit TIMEOUT 120)
add_executable(test_hss test_hss.c ${PROJECT_SOURCE_DIR}/src/qualifyd/hss_embedded.c
  ${PROJECT_SOURCE_DIR}/src/qualifyd/hss_osmo.c ${PROJECT_SOURCE_DIR}/src/qualifyd/hss_osmo_vty.c)
target_include_directories(test_hss PRIVATE ${PROJECT_SOURCE_DIR}/src/qualifyd)
target_link_libraries(test_hss PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA)
add_test(NAME unit.hss COMMAND test_hss)
set_tests_properties(unit.hss PROPERTIES LABELS unit TIMEOUT 120)
stb_unit_pg(hss)
