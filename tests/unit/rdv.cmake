# rendezvousd: the overlay pool allocator, the code wrap, the enrolment
# codes and the CONNECT_REQ limits.
# Included from tests/unit/CMakeLists.txt.
add_executable(test_rdv test_rdv.c ${PROJECT_SOURCE_DIR}/src/rendezvousd/pool.c
  ${PROJECT_SOURCE_DIR}/src/rendezvousd/enrol.c ${PROJECT_SOURCE_DIR}/src/rendezvousd/climit.c)
target_include_directories(test_rdv PRIVATE ${PROJECT_SOURCE_DIR}/src/rendezvousd)
target_link_libraries(test_rdv PRIVATE stbcommon PkgConfig::CMOCKA)
add_test(NAME unit.rdv COMMAND test_rdv)
set_tests_properties(unit.rdv PROPERTIES LABELS unit TIMEOUT 120)

# libstbclient: the set of sessions offered to a device.
add_executable(test_rdvc test_rdvc.c)
target_link_libraries(test_rdvc PRIVATE stbclient_internal PkgConfig::CMOCKA)
add_test(NAME unit.rdvc COMMAND test_rdvc)
set_tests_properties(unit.rdvc PROPERTIES LABELS unit TIMEOUT 120)
