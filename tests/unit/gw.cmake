# flow A (gw): unit tests; included from tests/unit/CMakeLists.txt.
# media-gw: the login session table and the relaying of ca-authd's refusals.
add_executable(test_gw test_gw.c ${PROJECT_SOURCE_DIR}/src/media-gw/sess.c
  ${PROJECT_SOURCE_DIR}/src/media-gw/gwca.c)
target_include_directories(test_gw PRIVATE ${PROJECT_SOURCE_DIR}/src/media-gw)
target_link_libraries(test_gw PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA)
add_test(NAME unit.gw COMMAND test_gw)
set_tests_properties(unit.gw PROPERTIES LABELS unit TIMEOUT 120)
