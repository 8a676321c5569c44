# flow A (gw): unit tests; included from tests/unit/CMakeLists.txt.
