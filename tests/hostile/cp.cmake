# Flow A (cert-proxyd, ca-authd) taking what is not yours: cert-ID
# squatting, the pipelined-fetch race, explicit curve parameters, and the
# modes of the files a daemon leaves (issue 9, points 8, 9, 11, 12).
add_executable(cp_hostile_client cp_hostile_client.c)
target_link_libraries(cp_hostile_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_CP_HOSTILE=$<TARGET_FILE:cp_hostile_client>
  STB_CP_CLIENT=$<TARGET_FILE:cp_client>)

stb_hostile(test_cert_squat)
stb_hostile(test_fetch_race)
stb_hostile(test_explicit_curve)
stb_hostile(test_file_modes)
