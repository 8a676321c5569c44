# flow A (gw): integration tests; included from tests/integration/CMakeLists.txt.
# gw_client: an STB that makes its own key info (forged proofs, replays)
# with certificates from ca-authd; no cert-proxyd.
add_executable(gw_client gw_client.c)
target_link_libraries(gw_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_GW_CLIENT=$<TARGET_FILE:gw_client>)

stb_integration(test_gw)
