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
