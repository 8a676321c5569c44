# flow E, the TV side (libstbclient's app checks through stb-client) against
# a real appvetd; apk's fixture APKs (tests/unit/apk.cmake).
# Included from tests/integration/CMakeLists.txt.
add_test(NAME integration.test_avq_tv
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_avq_tv.sh)
set_tests_properties(integration.test_avq_tv PROPERTIES
  LABELS integration TIMEOUT 300 FIXTURES_REQUIRED apk_fixtures
  ENVIRONMENT "${STB_TEST_ENV};STB_APK_FIXTURES=${STB_APK_FIXTURES}")
