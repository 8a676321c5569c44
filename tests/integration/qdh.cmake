# Flow D end to end (qualifyd, osmo-hlr, the device in libstbclient).
# Included from tests/integration/CMakeLists.txt.
add_executable(hss_osmo_cli hss_osmo_cli.c ${PROJECT_SOURCE_DIR}/src/qualifyd/hss_osmo.c
  ${PROJECT_SOURCE_DIR}/src/qualifyd/hss_osmo_vty.c)
target_include_directories(hss_osmo_cli PRIVATE ${PROJECT_SOURCE_DIR}/src/qualifyd)
target_link_libraries(hss_osmo_cli PRIVATE stbcommon)
list(APPEND STB_TEST_ENV STB_HSS_OSMO_CLI=$<TARGET_FILE:hss_osmo_cli>)

# qualifyd's osmo-hlr backend against a real osmo-hlr, checked over GSUP
stb_integration(test_qdh_hlr)

# flow D through stb-client: the three roles in one qualifyd
stb_integration(test_qdh_one)
# the three roles in three qualifyd processes
stb_integration(test_qdh_split)
# qualifyd's OCSP question to an independent responder (openssl ocsp)
stb_integration(test_qdh_ocsp)
# qualifyd with osmo-hlr as the HSS, checked over GSUP
stb_integration(test_qdh_hlr_boot)
# TLS session resumption across qualifyd's roles, a revoked device's ticket
stb_integration(test_qdh_resume)
# stb-bench bootstrap, a smoke run
list(APPEND STB_TEST_ENV STB_BENCH=$<TARGET_FILE:stb-bench>)
stb_integration(test_bench_qdh)

# One PKI made by ca-authd for all of them (pki-bootstrap costs seconds);
# each test copies it, CA state included, into its own temp dir.
set(QDH_PKI ${CMAKE_CURRENT_BINARY_DIR}/qdh-pki)
add_test(NAME integration.qdh_pki
  COMMAND ${PROJECT_SOURCE_DIR}/scripts/pki-bootstrap.sh --force ${QDH_PKI})
set_tests_properties(integration.qdh_pki PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "STB_BIN_ca_authd=$<TARGET_FILE:ca-authd>" FIXTURES_SETUP qdh_pki)
foreach(t test_qdh_one test_qdh_resume test_qdh_split test_qdh_ocsp test_qdh_hlr_boot test_bench_qdh)
  stb_test_append(integration.${t} ENVIRONMENT QDH_PKI=${QDH_PKI})
  stb_test_append(integration.${t} FIXTURES_REQUIRED qdh_pki)
endforeach()
