# flow A (ca): integration tests; included from tests/integration/CMakeLists.txt.
