# Network resources (issue 9, points 1, 2 and 7): slowloris on the HTTP
# listener, idle sockets on the TLS listener, the descriptor limit.
# net_client is the bounded attacker (loopback, fixed counts and time).
add_executable(net_client ${CMAKE_CURRENT_SOURCE_DIR}/net_client.c)
list(APPEND STB_TEST_ENV STB_NET_CLIENT=$<TARGET_FILE:net_client>)

stb_hostile(test_slowloris)
stb_hostile(test_idle_sockets)
stb_hostile(test_fd_exhaustion)
