# flow A (cp): integration tests; included from tests/integration/CMakeLists.txt.
