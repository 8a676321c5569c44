# keymgmtd (flow C, the daemon side): import, services, key sync and its
# refusals, SMS over the HTTPS callback, pushes to the reference platform,
# admin.  Uses kmt's PKI fixture and platform.  Included from
# tests/integration/CMakeLists.txt.
add_executable(km_client km_client.c)
target_link_libraries(km_client PRIVATE stbclient_internal)
list(APPEND STB_TEST_ENV STB_KM_CLIENT=$<TARGET_FILE:km_client>)

foreach(t test_km_sync test_km_import)
  stb_integration(${t})
  stb_test_append(integration.${t} FIXTURES_REQUIRED kmt_pki)
endforeach()
