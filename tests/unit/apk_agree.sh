#!/bin/bash
# apk_agree.sh APK_DUMP FIXTURES: on every fixture APK, the analysis's
# signature verdict (signature_ok, each scheme, the signer certificate)
# agrees with `apksigner verify -v --print-certs` (run once by make-apks.sh
# into X.apk.apksigner: a JVM per APK is too slow for every test run), and
# its permission list with `aapt dump permissions` (same names, same order;
# where aapt refuses the archive, the analysis must have an unsafe zip.* or
# manifest finding).
set -euo pipefail
exec /usr/bin/python3 - "$@" <<'PYEOF'
import glob, json, os, re, subprocess, sys

dump, fx = sys.argv[1:3]
apks = sorted(a for a in glob.glob(os.path.join(fx, '*.apk'))
              if os.path.basename(a) != 'big.apk')
out = subprocess.run([dump] + apks, check=True, capture_output=True,
                     text=True).stdout.splitlines()
assert len(out) == len(apks), 'apk_dump printed %d reports' % len(out)
bad = []
for apk, js in zip(apks, out):
    name = os.path.basename(apk)
    r = json.loads(js)
    sv = open(apk + '.apksigner').read()
    ok = sv.splitlines()[0:1] == ['Verifies']
    if r['signature_ok'] != ok:
        bad.append('%s: signature_ok %s, apksigner says %s' %
                   (name, r['signature_ok'], sv.splitlines()[:2]))
    if ok:
        for v in ('v1', 'v2', 'v3'):
            m = re.search(r'Verified using %s scheme[^:]*: (true|false)' % v, sv)
            theirs = m is not None and m.group(1) == 'true'
            if theirs != (r['schemes'][v] == 'verified'):
                bad.append('%s: %s %s, apksigner %s' %
                           (name, v, r['schemes'][v], theirs))
        m = re.search(r'Signer #1 certificate SHA-256 digest: ([0-9a-f]+)', sv)
        if m is None or r.get('signer_sha256') != m.group(1):
            bad.append('%s: signer %s, apksigner %s' %
                       (name, r.get('signer_sha256'), m and m.group(1)))
    a = subprocess.run(['aapt', 'dump', 'permissions', apk],
                       capture_output=True, text=True)
    theirs = re.findall(r"^uses-permission(?:-sdk-23)?: name='([^']*)'",
                        a.stdout, re.M)
    if a.returncode != 0:
        why = [f['code'] for f in r['findings'] if f['severity'] == 'unsafe'
               and re.match(r'zip\.|apk\.(no_manifest|manifest_malformed)',
                            f['code'])]
        if not why:
            bad.append('%s: aapt refuses it, the analysis finds nothing '
                       'wrong' % name)
    elif r['permissions'] != theirs:
        bad.append('%s: permissions %s, aapt %s' %
                   (name, r['permissions'], theirs))
for b in bad:
    print(b)
print('apk_agree: %d fixtures, %d disagreements' % (len(apks), len(bad)))
sys.exit(1 if bad or len(apks) < 15 else 0)
PYEOF
