# rdv_lib.sh: rendezvousd test helpers, sourced after lib.sh.  provision
# keeps each device's one-time enrolment code in $RDV_ENROL_DIR/<device>,
# where the test drivers (enrolcode.h) and enrol_file find it.
RDV_ENROL_DIR=$T/enrol
export RDV_ENROL_DIR
mkdir -p "$RDV_ENROL_DIR"
chmod 700 "$RDV_ENROL_DIR"

# provision DEVICE...: as admin, each one; the code from the --json
# answer.  Fails when one was refused or came without a code.
provision() {
	local d code rc=0
	for d; do
		code=$(ctl rendezvousd --json rdv provision "$d" |
			sed -n 's/.*"enrol_code":[[:space:]]*"\([0-9a-f]*\)".*/\1/p') || rc=1
		if [ ${#code} -eq 32 ]; then
			printf '%s\n' "$code" >"$RDV_ENROL_DIR/$d"
		else
			rc=1
		fi
	done
	return $rc
}

# enrol_file DEVICE: the file holding DEVICE's code (stb-client --enrol-file)
enrol_file() { echo "$RDV_ENROL_DIR/$1"; }
