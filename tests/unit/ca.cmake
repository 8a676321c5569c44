# flow A (ca): unit tests; included from tests/unit/CMakeLists.txt.
