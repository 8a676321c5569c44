# qualifyd (flow D): src/core/qualify.c; the embedded HSS.
add_executable(test_qualify test_qualify.c)
target_link_libraries(test_qualify PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA)
add_test(NAME unit.qualify COMMAND test_qualify)
set_tests_properties(unit.qualify PROPERTIES LABELS unit TIMEOUT 120)
