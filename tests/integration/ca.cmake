# flow A (ca): integration tests; included from tests/integration/CMakeLists.txt.
# ca_client plays cert-proxyd and media-gw against ca-authd; the key info
# transcript (login.c) is compiled in, as the STB side does.
add_executable(ca_client ca_client.c)
target_link_libraries(ca_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_CA_CLIENT=$<TARGET_FILE:ca_client>)

stb_integration(test_ca)
stb_integration(test_ocsp_cache)
