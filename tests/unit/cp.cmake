# flow A (cp): unit tests; included from tests/unit/CMakeLists.txt.
# cert-proxyd's pure modules: the issuance flight table, the due logic and
# the key cache (lockout.c has its own test_lockout).
set(_cp ${PROJECT_SOURCE_DIR}/src/cert-proxyd)
add_executable(test_cp test_cp.c ${_cp}/flight.c ${_cp}/keycache.c
  ${_cp}/due.c)
target_include_directories(test_cp PRIVATE ${_cp})
target_link_libraries(test_cp PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA)
add_test(NAME unit.cp COMMAND test_cp)
set_tests_properties(unit.cp PROPERTIES LABELS unit TIMEOUT 120)
