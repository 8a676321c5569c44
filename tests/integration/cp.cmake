# flow A (cp): integration tests; included from tests/integration/CMakeLists.txt.
# cp_client is a test STB for cert-proxyd (HMAC authentication, key info,
# fetches, update pushes) over the internal client API.
add_executable(cp_client cp_client.c)
target_link_libraries(cp_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_CP_CLIENT=$<TARGET_FILE:cp_client>)

stb_integration(test_cp)
stb_integration(test_reload_peer)
