# qualifyd (flow D): a test device and the daemon's integration tests.
add_executable(qd_client qd_client.c)
target_link_libraries(qd_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_QD_CLIENT=$<TARGET_FILE:qd_client>)

stb_integration(test_qd)
stb_integration(test_qd_split)
