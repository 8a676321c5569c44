-- wrk -s bench/wrk-post.lua URL: POSTs the file named by $WRK_BODY (a CSR
-- as cfssl's JSON sign request, or a DER OCSP request) with the
-- Content-Type $WRK_TYPE, the same body every time (scripts/bench.sh).
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("WRK_TYPE") or "application/octet-stream"
