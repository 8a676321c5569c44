# flow E's payload formats in src/core: base45, COSE_Sign1, the QR payload,
# the signed index.  Included from tests/unit/CMakeLists.txt.
foreach(t base45 cose apppay appindex)
  add_executable(test_${t} test_${t}.c)
  target_link_libraries(test_${t} PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA)
  add_test(NAME unit.${t} COMMAND test_${t})
  set_tests_properties(unit.${t} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()

# stbctl's QR images, read back with zbar
add_executable(test_qrimg test_qrimg.c ${PROJECT_SOURCE_DIR}/src/stbctl/qrimg.c)
target_include_directories(test_qrimg PRIVATE ${PROJECT_SOURCE_DIR}/src/stbctl)
target_link_libraries(test_qrimg PRIVATE stbtestutil stbcommon PkgConfig::CMOCKA
  PkgConfig::QRENCODE PkgConfig::LIBPNG)
add_test(NAME unit.qrimg COMMAND test_qrimg)
set_tests_properties(unit.qrimg PROPERTIES LABELS unit TIMEOUT 120)

# an independent COSE reader (Python cbor2 + cryptography) checks what
# src/core signs
add_executable(apppay_emit apppay_emit.c)
target_link_libraries(apppay_emit PRIVATE stbcommon)
add_test(NAME unit.cose_reader
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cose_reader.sh $<TARGET_FILE:apppay_emit>
          ${CMAKE_CURRENT_SOURCE_DIR}/cose_reader.py)
set_tests_properties(unit.cose_reader PROPERTIES LABELS unit TIMEOUT 120)
