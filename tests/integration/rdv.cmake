# rendezvousd: a test device driver and the integration test.
# Included from tests/integration/CMakeLists.txt.
add_executable(rdv_client rdv_client.c ${PROJECT_SOURCE_DIR}/src/rendezvousd/wrap.c)
target_include_directories(rdv_client PRIVATE ${PROJECT_SOURCE_DIR}/src/rendezvousd)
target_link_libraries(rdv_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_RDV_CLIENT=$<TARGET_FILE:rdv_client>)

stb_integration(test_rdv)
