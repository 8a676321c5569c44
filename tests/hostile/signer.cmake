# Keys out of the network processes (issue 9, point 14): keyscan counts the
# KEK and private keys in a process's memory; test_signer checks that only
# ca-authd's and cert-proxyd's signer processes hold them, and that a dead
# or stuck signer makes signing UNAVAILABLE, then recovers.
add_executable(keyscan ${CMAKE_CURRENT_SOURCE_DIR}/keyscan.c)
target_link_libraries(keyscan PRIVATE stbcommon)
stb_hostile(test_signer)
stb_test_append(hostile.test_signer ENVIRONMENT STB_KEYSCAN=$<TARGET_FILE:keyscan>
  STB_CP_CLIENT=$<TARGET_FILE:cp_client>)
