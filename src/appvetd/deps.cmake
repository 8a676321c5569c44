# appvetd's own libraries (included from the daemon loop; ${d} is appvetd).
# The APK analysis (apk.h) is a library that the unit tests, tests/unit's
# apk_dump driver and the fuzzers link as well; appvetd takes it from there.
set(_apk_src apk.c apkzip.c apkv1.c apksig.c axml.c clam.c)
list(TRANSFORM _apk_src PREPEND ${PROJECT_SOURCE_DIR}/src/appvetd/)
add_library(stbapk STATIC ${_apk_src})
target_include_directories(stbapk PUBLIC ${PROJECT_SOURCE_DIR}/src/appvetd)
target_link_libraries(stbapk PUBLIC stbcommon PkgConfig::LIBZIP PkgConfig::LIBCLAMAV)
get_target_property(_appvetd_src ${d} SOURCES)
list(REMOVE_ITEM _appvetd_src ${_apk_src})
set_target_properties(${d} PROPERTIES SOURCES "${_appvetd_src}")
target_link_libraries(${d} PRIVATE stbapk)
