# rendezvousd (flow B): a CONNECT_REQ flood from a registered device, and
# devices claimed by whoever registers them first.  Included from
# tests/hostile/CMakeLists.txt.
add_executable(rdv_hostile rdv_client.c)
target_include_directories(rdv_hostile PRIVATE ${PROJECT_SOURCE_DIR}/tests/integration)
target_link_libraries(rdv_hostile PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_RDV_HOSTILE=$<TARGET_FILE:rdv_hostile>)

stb_hostile(test_connect_flood)
stb_hostile(test_enrol_squat)
