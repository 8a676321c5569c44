# flow A (cp): unit tests; included from tests/unit/CMakeLists.txt.
