# flow A end to end (all three daemons + libstbclient's stb_login).
