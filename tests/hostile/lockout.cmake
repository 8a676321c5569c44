# Lockout as a weapon (issue 9, points 5 and 13): a bounded guesser against
# cert-proxyd's AUTH_PROVE and rendezvousd's REGISTER from loopback source
# addresses, while the real box keeps logging in.
add_executable(lockout_client ${CMAKE_CURRENT_SOURCE_DIR}/lockout_client.c)
target_link_libraries(lockout_client PRIVATE stbcommon)
target_include_directories(lockout_client PRIVATE ${PROJECT_SOURCE_DIR}/tests/integration) # enrolcode.h
list(APPEND STB_TEST_ENV STB_LOCKOUT_CLIENT=$<TARGET_FILE:lockout_client>
  STB_CP_CLIENT=$<TARGET_FILE:cp_client> STB_RDV_CLIENT=$<TARGET_FILE:rdv_client>)
stb_hostile(test_lockout_attack)
