# Flow C's other side (kmt): the Kannel harness, the reference app
# platform end to end, delivery under faults.  Included from
# tests/integration/CMakeLists.txt.  The tests share one PKI, made once
# (fixture kmt_pki).
set(KMT_PKI ${CMAKE_CURRENT_BINARY_DIR}/kmt-pki)
add_test(NAME integration.kmt_pki
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/kmt_pki.sh ${KMT_PKI})
set_tests_properties(integration.kmt_pki PROPERTIES
  LABELS integration FIXTURES_SETUP kmt_pki ENVIRONMENT "${STB_TEST_ENV}")
list(APPEND STB_TEST_ENV STB_KMT_PKI=${KMT_PKI} STB_APP_PLATFORM=$<TARGET_FILE:app-platform>)

add_executable(kmt_push kmt_push.c)
target_link_libraries(kmt_push PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_KMT_PUSH=$<TARGET_FILE:kmt_push>)

foreach(t test_kmt_kannel test_kmt_platform test_kmt_sync test_kmt_sms test_kmt_faults)
  stb_integration(${t})
  stb_test_append(integration.${t} FIXTURES_REQUIRED kmt_pki)
endforeach()
