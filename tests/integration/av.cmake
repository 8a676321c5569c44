# appvetd (flow E): the anonymous TV driver and the integration tests, on
# apk's fixture APKs (tests/unit/apk.cmake's apk_fixtures).
# Included from tests/integration/CMakeLists.txt.
add_executable(av_client av_client.c)
target_link_libraries(av_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_AV_CLIENT=$<TARGET_FILE:av_client>
     STB_APK_FIXTURES=${STB_APK_FIXTURES})

stb_integration(test_av_flow)
stb_test_append(integration.test_av_flow FIXTURES_REQUIRED apk_fixtures)
stb_integration(test_av_split)
stb_test_append(integration.test_av_split FIXTURES_REQUIRED apk_fixtures)
