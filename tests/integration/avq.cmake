# flow E, the TV side (libstbclient's app checks through stb-client) against
# a real appvetd; apk's fixture APKs (tests/unit/apk.cmake).
# Included from tests/integration/CMakeLists.txt.
stb_integration(test_avq_tv)
stb_test_append(integration.test_avq_tv FIXTURES_REQUIRED apk_fixtures)
stb_test_append(integration.test_avq_tv ENVIRONMENT STB_APK_FIXTURES=${STB_APK_FIXTURES})
