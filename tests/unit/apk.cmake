# flow E (apk): the APK analysis of appvetd (src/appvetd/apk.h); included
# from tests/unit/CMakeLists.txt.
#
# The fixture APKs (tests/fixtures/make-apks.sh: aapt, zipalign, apksigner)
# land in ${CMAKE_BINARY_DIR}/apk-fixtures, made once by the ctest fixture
# "apk_fixtures" (the test apk.fixtures; its stamp skips the work when the
# script did not change).  Other tests that need them set
#   FIXTURES_REQUIRED apk_fixtures
# and read $STB_APK_FIXTURES (exported below into STB_APK_ENV).
set(STB_APK_FIXTURES ${CMAKE_BINARY_DIR}/apk-fixtures CACHE INTERNAL "")
add_test(NAME apk.fixtures
  COMMAND bash ${PROJECT_SOURCE_DIR}/tests/fixtures/make-apks.sh ${STB_APK_FIXTURES})
set_tests_properties(apk.fixtures PROPERTIES FIXTURES_SETUP apk_fixtures
  LABELS unit TIMEOUT 300)

add_executable(apk_dump apk_dump.c)
target_link_libraries(apk_dump PRIVATE stbapk)

add_executable(test_apk test_apk.c)
target_link_libraries(test_apk PRIVATE stbapk stbtestutil PkgConfig::CMOCKA)
add_test(NAME unit.apk COMMAND test_apk ${STB_APK_FIXTURES})
set_tests_properties(unit.apk PROPERTIES LABELS unit TIMEOUT 120
  FIXTURES_REQUIRED apk_fixtures)

# agreement with apksigner verify and aapt dump permissions on every fixture
add_test(NAME unit.apk_agree
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/apk_agree.sh
          $<TARGET_FILE:apk_dump> ${STB_APK_FIXTURES})
set_tests_properties(unit.apk_agree PROPERTIES LABELS unit TIMEOUT 300
  FIXTURES_REQUIRED apk_fixtures)
