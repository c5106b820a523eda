#!/usr/bin/env python3
"""An independent JWT-SVID signer for mtls-core's tests (tests/jwt_svid.rs).

Reads on stdin a JSON request:
  {"keys": {"<name>": "P-256" | "P-384" | "P-521" | "RSA-2048"},
   "tokens": [{"key": "<name>",
               "header": {...} or "header_raw": "<exact JSON text>",
               "claims": {...} or "claims_raw": "<exact JSON text>",
               "sign": "ES256" | "ES256-DER" | "RS256" | "PS256" | ... |
                       "HS256-PEM" | "none"}]}
("sign" defaults to the header's "alg"), and writes on stdout
  {"jwks": {"<name>": <public JWK, kid = name>}, "tokens": ["<compact JWS>"]}.

Keys are fresh at every run. Nothing of mtls is used: Python's
`cryptography` computes every signature. Exits 3 when `cryptography` is
missing.
"""

import base64
import hashlib
import hmac
import json
import sys

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError as e:  # pragma: no cover
    print(f"python3 cannot import cryptography: {e}", file=sys.stderr)
    sys.exit(3)

CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48), "P-521": (ec.SECP521R1, 66)}
HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int, length: int = 0) -> bytes:
    return n.to_bytes(max(length, (n.bit_length() + 7) // 8), "big")


def make_key(kind: str):
    if kind in CURVES:
        return ec.generate_private_key(CURVES[kind][0]())
    if kind.startswith("RSA-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    raise SystemExit(f"unknown key kind {kind}")


def jwk(name: str, kind: str, key) -> dict:
    pub = key.public_key().public_numbers()
    if kind in CURVES:
        size = CURVES[kind][1]
        return {"use": "jwt-svid", "kty": "EC", "crv": kind, "kid": name,
                "x": b64(uint(pub.x, size)), "y": b64(uint(pub.y, size))}
    return {"use": "jwt-svid", "kty": "RSA", "kid": name, "n": b64(uint(pub.n)), "e": b64(uint(pub.e))}


def sign(mode: str, key, kind: str, message: bytes) -> bytes:
    if mode == "none":
        return b""
    if mode == "HS256-PEM":
        # The classic confusion attack: the public key as an HMAC secret.
        secret = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hmac.new(secret, message, hashlib.sha256).digest()
    family, bits, der = mode[:2], mode[2:5], mode.endswith("-DER")
    digest = HASHES[bits]()
    if family == "ES":
        signature = key.sign(message, ec.ECDSA(digest))
        if der:
            return signature
        r, s = decode_dss_signature(signature)
        size = CURVES[kind][1]
        return uint(r, size) + uint(s, size)
    if family == "RS":
        return key.sign(message, padding.PKCS1v15(), digest)
    if family == "PS":
        pss = padding.PSS(mgf=padding.MGF1(HASHES[bits]()), salt_length=padding.PSS.DIGEST_LENGTH)
        return key.sign(message, pss, digest)
    raise SystemExit(f"unknown signing mode {mode}")


def main() -> None:
    request = json.load(sys.stdin)
    kinds = request["keys"]
    keys = {name: make_key(kind) for name, kind in kinds.items()}
    tokens = []
    for spec in request["tokens"]:
        header = spec.get("header_raw")
        if header is None:
            header = json.dumps(spec["header"], separators=(",", ":"))
        claims = spec.get("claims_raw")
        if claims is None:
            claims = json.dumps(spec["claims"], separators=(",", ":"))
        mode = spec.get("sign") or spec.get("header", {}).get("alg") or "none"
        signing_input = b64(header.encode()) + "." + b64(claims.encode())
        name = spec["key"]
        signature = sign(mode, keys[name], kinds[name], signing_input.encode())
        tokens.append(signing_input + "." + b64(signature))
    jwks = {name: jwk(name, kinds[name], key) for name, key in keys.items()}
    json.dump({"jwks": jwks, "tokens": tokens}, sys.stdout)


if __name__ == "__main__":
    main()
