# media-gw under a LOGIN_START flood, refusal summaries instead of a row and
# a line per anonymous refusal, and ADMIN_AUDIT_VERIFY off the loops.
# Included from tests/hostile/CMakeLists.txt.
# gw_flood: pipelined LOGIN_START / LOGIN_FINISH / AUDIT_NOTE floods from a
# source address of its choice, and PINGs during an ADMIN_AUDIT_VERIFY.
add_executable(gw_flood gw_flood.c)
target_link_libraries(gw_flood PRIVATE stbclient_internal OpenSSL::SSL)
list(APPEND STB_TEST_ENV STB_GW_FLOOD=$<TARGET_FILE:gw_flood>
  STB_CP_CLIENT=$<TARGET_FILE:cp_client> STB_RDV_CLIENT=$<TARGET_FILE:rdv_client>)

stb_hostile(test_login_start_flood)
stb_hostile(test_audit_verify)
stb_hostile(test_refusal_summaries)
