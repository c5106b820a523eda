"""An independent JWT-SVID signature check, with Python's `cryptography`.

Usage: verify_jws.py BUNDLE.json TOKEN

Finds the token's `kid` among the bundle's `jwt-svid` keys, checks the
ES256/ES384 signature (raw r||s, RFC 7518 section 3.4) and prints the
header and the claims as one JSON object {"header": ..., "claims": ...}.
Exits 1 with the reason on stderr when anything is wrong.
"""

import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

CURVES = {
    "ES256": (ec.SECP256R1(), hashes.SHA256(), "P-256", 32),
    "ES384": (ec.SECP384R1(), hashes.SHA384(), "P-384", 48),
}


def b64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def fail(reason):
    print(reason, file=sys.stderr)
    sys.exit(1)


def main():
    bundle = json.load(open(sys.argv[1]))
    token = sys.argv[2].strip()
    parts = token.split(".")
    if len(parts) != 3:
        fail("not a compact JWS")
    header = json.loads(b64(parts[0]))
    claims = json.loads(b64(parts[1]))
    alg = header.get("alg")
    if alg not in CURVES:
        fail(f"unexpected alg {alg!r}")
    curve, digest, crv, size = CURVES[alg]
    keys = [
        k
        for k in bundle["keys"]
        if k.get("use") == "jwt-svid" and k.get("kid") == header.get("kid")
    ]
    if len(keys) != 1:
        fail(f"no single jwt-svid key with kid {header.get('kid')!r}")
    jwk = keys[0]
    if jwk.get("kty") != "EC" or jwk.get("crv") != crv:
        fail(f"key {jwk.get('kid')!r} is not an EC {crv} key")
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64(jwk["x"]), "big"), int.from_bytes(b64(jwk["y"]), "big"), curve
    ).public_key()
    signature = b64(parts[2])
    if len(signature) != 2 * size:
        fail(f"signature is {len(signature)} bytes, not {2 * size}")
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    try:
        public.verify(
            encode_dss_signature(r, s),
            (parts[0] + "." + parts[1]).encode(),
            ec.ECDSA(digest),
        )
    except InvalidSignature:
        fail("bad signature")
    print(json.dumps({"header": header, "claims": claims}))


main()
