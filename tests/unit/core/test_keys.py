"""Tests for `detente.core.keys`: vkeys, key ids, names and signers (Go `sumdb/note` style)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from detente.core import keys
from detente.errors import MalformedError
from mangling import mangled

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
# ledger.md §2.2: seeds SHA-256(b"log-seed") and SHA-256(b"witness-seed").
LOG_VKEY = "example.com/research-log+1393caad+ASFtxbJ+SCrR8mMjjkAEjsCl7r4babR57dLqNXQJThac"
WITNESS_VKEY = "witness.example/w1+3b77ad4f+BBVvFoOqF1DQfJIToCjTWMcKixiQK55sETEy81T/ZLUt"


def log_signer() -> keys.Signer:
    return keys.Signer.from_seed("example.com/research-log", hashlib.sha256(b"log-seed").digest())


def witness_signer() -> keys.Signer:
    return keys.Signer.from_seed("witness.example/w1", hashlib.sha256(b"witness-seed").digest())


def test_parse_spec_vkey() -> None:
    v = keys.parse_vkey(SPEC_VKEY)
    assert v.name == "example.com/foo"
    assert v.alg == keys.ALG_ED25519
    assert v.key_id == bytes.fromhex("530d903a")
    assert len(v.public) == 32
    assert v.vkey() == SPEC_VKEY


def test_golden_signer_vkeys() -> None:
    log, witness = log_signer(), witness_signer()
    assert log.verifier.vkey() == LOG_VKEY
    assert witness.verifier.with_alg(keys.ALG_COSIGNATURE_V1).vkey() == WITNESS_VKEY
    # The log vkey's base64 holds a "+": the string must be split on its first two "+" only.
    assert "+" in LOG_VKEY.split("+", 2)[2]
    assert keys.parse_vkey(LOG_VKEY) == log.verifier
    cosigner = keys.parse_vkey(WITNESS_VKEY)
    assert cosigner.alg == keys.ALG_COSIGNATURE_V1
    assert cosigner.public == witness.public
    assert cosigner.with_alg(keys.ALG_ED25519) == witness.verifier


def test_key_id_commits_to_name_and_type() -> None:
    pub = log_signer().public
    want = hashlib.sha256(b"example.com/research-log\n\x01" + pub).digest()[:4]
    assert keys.key_id("example.com/research-log", keys.ALG_ED25519, pub) == want
    assert keys.key_id("example.com/research-log", keys.ALG_COSIGNATURE_V1, pub) != want
    assert keys.key_id("example.com/research-log2", keys.ALG_ED25519, pub) != want
    wpub = witness_signer().public
    assert keys.key_id("witness.example/w1", keys.ALG_COSIGNATURE_V1, wpub) == bytes.fromhex("3b77ad4f")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("example.com/foo", True),
        ("a", True),
        ("oid/1.3.6.1.4.1", True),
        ("ünïcödé.example/ø", True),
        ("", False),
        ("a+b", False),
        ("+", False),
        ("a b", False),
        ("a\tb", False),
        ("a\nb", False),
        ("a\u00a0b", False),  # NO-BREAK SPACE
        ("a\u2003b", False),  # EM SPACE
        ("a\u3000b", False),  # IDEOGRAPHIC SPACE
        ("a\u2028b", False),  # LINE SEPARATOR
        ("a\u0085b", False),  # NEXT LINE
        ("a\x00b", False),
    ],
)
def test_valid_key_name(name: str, ok: bool) -> None:
    assert keys.valid_key_name(name) is ok


def _vkey(name: str, alg: int, pub: bytes, kid: bytes | None = None) -> str:
    kid = keys.key_id(name, alg, pub) if kid is None else kid
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([alg]) + pub).decode()}"


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "example.com/foo",
        "example.com/foo+530d903a",
        SPEC_VKEY.replace("530d903a", "530D903A"),  # uppercase hex
        SPEC_VKEY.replace("530d903a", "530d903"),
        SPEC_VKEY.replace("530d903a", "530d903a0"),
        SPEC_VKEY.replace("530d903a", "530d903b"),  # id does not match the key
        SPEC_VKEY.replace("example.com/foo", "example.com/bar"),
        SPEC_VKEY.replace("example.com/foo", "example com/foo"),
        SPEC_VKEY.replace("U2k", "U2l"),  # non-canonical: non-zero trailing bits
        SPEC_VKEY + "=",
        SPEC_VKEY + "\n",
        " " + SPEC_VKEY,
        _vkey("example.com/foo", 0x02, bytes(32)),  # unsupported type
        _vkey("example.com/foo", 0x01, bytes(31)),
        _vkey("example.com/foo", 0x01, bytes(33)),
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_parse_vkey_rejects(vkey: str) -> None:
    with pytest.raises(MalformedError):
        keys.parse_vkey(vkey)


def test_parse_vkey_accepts_cosignature_type() -> None:
    pub = witness_signer().public
    assert keys.parse_vkey(_vkey("w", keys.ALG_COSIGNATURE_V1, pub)).alg == keys.ALG_COSIGNATURE_V1


@pytest.mark.parametrize("vkey", [SPEC_VKEY, LOG_VKEY, WITNESS_VKEY])
def test_vkey_mangling(vkey: str) -> None:
    raw = vkey.encode()
    count = 0
    for bad in mangled(raw):
        count += 1
        try:
            text = bad.decode()
        except UnicodeDecodeError:
            continue
        with pytest.raises(MalformedError):
            keys.parse_vkey(text)
    assert count > len(raw) ** 2 // 2


def test_signer_sign_and_verify() -> None:
    signer = log_signer()
    sig = signer.sign(b"hello")
    assert len(sig) == 64
    assert sig == log_signer().sign(b"hello")  # Ed25519 is deterministic
    assert signer.verifier.verify(sig, b"hello")
    assert not signer.verifier.verify(sig, b"hello!")
    assert not signer.verifier.verify(sig[:-1], b"hello")
    assert not witness_signer().verifier.verify(sig, b"hello")
    assert not keys.Verifier("x", keys.ALG_ED25519, b"short").verify(sig, b"hello")


def test_signature_cannot_borrow_bytes_from_the_message() -> None:
    # libsodium checks signature || message as one buffer: a 65-byte "signature" that takes the
    # message's first byte must not verify the rest of the message.
    signer = log_signer()
    sig = signer.sign(b"hello")
    assert not signer.verifier.verify(sig + b"h", b"ello")
    assert not signer.verifier.verify(sig[:63], bytes(sig[63:]) + b"hello")


def test_rfc8032_test_1() -> None:
    # RFC 8032 section 7.1, TEST 1: the standard's key, empty message and signature.
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    signer = keys.Signer.from_seed("rfc8032", seed)
    assert signer.public == public
    assert signer.sign(b"") == signature
    assert signer.verifier.verify(signature, b"")


def test_signatures_agree_with_openssl() -> None:
    # Keys load through `cryptography` (OpenSSL) and sign through libsodium: both must be the
    # same RFC 8032 key, so each verifies the other's signatures.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    private = Ed25519PrivateKey.generate()
    signer = keys.Signer("openssl", private)
    ours = signer.sign(b"message")
    Ed25519PublicKey.from_public_bytes(signer.public).verify(ours, b"message")  # raises if not
    assert signer.verifier.verify(private.sign(b"message"), b"message")


def test_small_order_key_is_refused() -> None:
    # The identity point as key, R = identity and S = 0 satisfy the cofactorless equation for
    # every message; libsodium refuses small-order keys and R, so no message "verifies" this way.
    identity = bytes([1]) + bytes(31)
    forged = identity + bytes(32)
    assert not keys.Verifier("x", keys.ALG_ED25519, identity).verify(forged, b"any message at all")


def test_signer_rejects_invalid_names() -> None:
    for name in ("", "a b", "a+b"):
        with pytest.raises(MalformedError):
            keys.Signer.generate(name)


def test_signer_pem_round_trip() -> None:
    signer = keys.Signer.generate("example.com/node")
    again = keys.Signer.from_pem("example.com/node", signer.to_pem())
    assert again.public == signer.public
    assert again.verifier == signer.verifier


def test_signer_from_pem_rejects() -> None:
    with pytest.raises(MalformedError):
        keys.Signer.from_pem("n", b"not a pem")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(MalformedError):
        keys.Signer.from_pem("n", ec_pem)
