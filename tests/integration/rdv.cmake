# rendezvousd: test device drivers and the integration tests.
# Included from tests/integration/CMakeLists.txt.  The code wrap (wrap.c)
# comes with libstbclient.
add_executable(rdv_client rdv_client.c)
target_link_libraries(rdv_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_RDV_CLIENT=$<TARGET_FILE:rdv_client>)

add_executable(peer_client peer_client.c)
target_link_libraries(peer_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_PEER_CLIENT=$<TARGET_FILE:peer_client>)

stb_integration(test_rdv)
stb_integration(test_peer_channel)
stb_integration(test_lockout)

list(APPEND STB_TEST_ENV STB_BENCH=$<TARGET_FILE:stb-bench>)
stb_integration(test_bench_rdv)

# two instances on one PostgreSQL database (issue 14): PostgreSQL run only
add_test(NAME integration.test_rdv_cluster
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_rdv_cluster.sh)
set_tests_properties(integration.test_rdv_cluster PROPERTIES
  LABELS "integration;pg;cluster" TIMEOUT 300 FIXTURES_REQUIRED pg_server
  ENVIRONMENT "${STB_TEST_ENV};STB_TEST_STORE=postgresql;STB_PG_ENV=${STB_PG_ENV_FILE}")
