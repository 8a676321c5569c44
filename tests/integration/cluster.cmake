# Several instances (issue 14): scripts/cluster.sh's topology over the
# pg_server fixture's PostgreSQL; PostgreSQL only (SQLite is one instance).
# 16 processes and HAProxy: under ASan on a loaded machine it needs more
# than the usual 300 s.
add_test(NAME integration.test_cluster
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster.sh)
set_tests_properties(integration.test_cluster PROPERTIES
  LABELS "integration;pg;cluster" TIMEOUT 600 FIXTURES_REQUIRED pg_server
  ENVIRONMENT "${STB_TEST_ENV};STB_PG_ENV=${STB_PG_ENV_FILE}")
