# flow A (gw): integration tests; included from tests/integration/CMakeLists.txt.
