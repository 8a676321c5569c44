# flow A end to end (all three daemons + libstbclient's stb_login).
# Included from tests/integration/CMakeLists.txt.
stb_integration(test_login)
stb_integration(test_bench_login)
