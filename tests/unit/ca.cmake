# flow A (ca): unit tests; included from tests/unit/CMakeLists.txt.
# Everything of ca-authd but its main(): profiles, certificate building,
# the store, the caches, CRL, OCSP and key info checks on a real CA.
file(GLOB _ca_src ${PROJECT_SOURCE_DIR}/src/ca-authd/*.c)
list(FILTER _ca_src EXCLUDE REGEX ".*/ca-authd\\.c$")
add_executable(test_ca test_ca.c ${_ca_src})
target_include_directories(test_ca PRIVATE ${PROJECT_SOURCE_DIR}/src/ca-authd)
target_link_libraries(test_ca PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA)
add_test(NAME unit.ca COMMAND test_ca)
set_tests_properties(unit.ca PROPERTIES LABELS unit TIMEOUT 120)
stb_unit_pg(ca)
