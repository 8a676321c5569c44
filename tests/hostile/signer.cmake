# Keys out of the network processes (issue 9, point 14): keyscan counts the
# KEK and private keys in a process's memory; test_signer checks that only
# ca-authd's and cert-proxyd's signer processes hold them, and that a dead
# or stuck signer makes signing UNAVAILABLE, then recovers.
add_executable(keyscan ${CMAKE_CURRENT_SOURCE_DIR}/keyscan.c)
target_link_libraries(keyscan PRIVATE stbcommon)
set(STB_SIGNER_ENV ${STB_TEST_ENV} STB_KEYSCAN=$<TARGET_FILE:keyscan>
  STB_CP_CLIENT=$<TARGET_FILE:cp_client>)
add_test(NAME hostile.test_signer COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_signer.sh)
set_tests_properties(hostile.test_signer PROPERTIES
  LABELS hostile TIMEOUT 300 ENVIRONMENT "${STB_SIGNER_ENV}")
