# appvetd (flow E): the anonymous TV driver and the integration tests.
# Included from tests/integration/CMakeLists.txt.
add_executable(av_client av_client.c)
target_link_libraries(av_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_AV_CLIENT=$<TARGET_FILE:av_client>)

stb_integration(test_av_flow)
