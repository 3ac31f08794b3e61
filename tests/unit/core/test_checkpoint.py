"""Tests for `detente.core.checkpoint`: tlog-checkpoint, tlog-witness bodies, tlog-proof bundles."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

import pytest

from detente.core import checkpoint as ckpt
from detente.core import keys, note
from detente.errors import MalformedError, VerificationError
from mangling import mangled

# ledger.md §2.2 golden example; Go `note.Sign` with the same seeds gives the same bytes.
LOG_NAME = "example.com/research-log"
WITNESS_NAME = "witness.example/w1"
LOG_VKEY = "example.com/research-log+1393caad+ASFtxbJ+SCrR8mMjjkAEjsCl7r4babR57dLqNXQJThac"
WITNESS_VKEY = "witness.example/w1+3b77ad4f+BBVvFoOqF1DQfJIToCjTWMcKixiQK55sETEy81T/ZLUt"
ROOT_1000 = "NGxrnLicS3b6ydyyDNqG46AcCldBfBOQKOrNRTj96Vs="
TEXT = f"{LOG_NAME}\n1000\n{ROOT_1000}\n"
LOG_LINE = (
    "— example.com/research-log "
    "E5PKraixNBAGkOWFLuLhOfM6/OVHjTkJ2nymyW/UL9b8wpNcM0gcUxlc+jIZOCQ7WdJw71f9VsZIDDqRHBjycoDCmAI=\n"
)
COSIG_LINE = (
    "— witness.example/w1 "
    "O3etTwAAAABlU/EAc928G5oXguDBfcqdJfvBirVnK3InuYMHGpenz3+0wov+fLN6LMLS/ZhlD4WL69+sSBq3UeGdj5htIvSjXH3xAQ==\n"
)
GOLDEN_NOTE = (TEXT + "\n" + LOG_LINE + COSIG_LINE).encode()
TS = 1_700_000_000
# ledger.md §2.4: the add-checkpoint example, old 700 -> 1000 (9 proof lines, 3 of them shown).
PROOF_700_FIRST = [
    "XdFhFobaNgVYGgNEioms92wKAR+kk59OSs8MwUiA/5I=",
    "d5Cf3nAGqKpMxqW+2vnVsuxMd4AgZAoWrh4XMU4iAYc=",
]
PROOF_700_LAST = "xtuUnnbP1dYUB8c6SBkhJlqwJOphMdAtxrcN79/U+to="


def log_signer() -> keys.Signer:
    return keys.Signer.from_seed(LOG_NAME, hashlib.sha256(b"log-seed").digest())


def witness_signer() -> keys.Signer:
    return keys.Signer.from_seed(WITNESS_NAME, hashlib.sha256(b"witness-seed").digest())


def witness_verifier() -> keys.Verifier:
    return keys.parse_vkey(WITNESS_VKEY)


# A tiny RFC 6962 §2.1 reference, independent of core.merkle.


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@cache
def _leaves() -> tuple[bytes, ...]:
    return tuple(_h(b"\x00" + b"entry %d" % i) for i in range(1000))


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(leaves: tuple[bytes, ...]) -> bytes:
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _h(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:]))


def _subproof(m: int, leaves: tuple[bytes, ...], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [_mth(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], whole) + [_mth(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [_mth(leaves[:k])]


def _path(index: int, leaves: tuple[bytes, ...]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return _path(index, leaves[:k]) + [_mth(leaves[k:])]
    return _path(index - k, leaves[k:]) + [_mth(leaves[:k])]


# --- the golden example -------------------------------------------------------------------------


def test_golden_root() -> None:
    assert base64.b64encode(_mth(_leaves())).decode() == ROOT_1000
    assert _mth(()) == hashlib.sha256(b"").digest()


def test_golden_checkpoint_byte_for_byte() -> None:
    log, witness = log_signer(), witness_signer()
    assert log.verifier.vkey() == LOG_VKEY
    assert witness.verifier.with_alg(keys.ALG_COSIGNATURE_V1).vkey() == WITNESS_VKEY
    cp = ckpt.Checkpoint(LOG_NAME, 1000, _mth(_leaves()))
    assert cp.text() == TEXT
    signed = ckpt.sign_checkpoint(cp, log)
    assert signed.signatures[0].line() == LOG_LINE
    cosig = note.cosign(cp.text(), witness, TS)
    assert cosig.line() == COSIG_LINE
    assert base64.b64decode(COSIG_LINE.split()[-1])[:12].hex() == "3b77ad4f000000006553f100"
    assert note.add_signatures(signed, cosig).format() == GOLDEN_NOTE


def test_golden_open_checkpoint() -> None:
    log_v = keys.parse_vkey(LOG_VKEY)
    cp, n, cosigned = ckpt.open_checkpoint(GOLDEN_NOTE, log_v, [witness_verifier()])
    assert cp == ckpt.Checkpoint(LOG_NAME, 1000, base64.b64decode(ROOT_1000))
    assert n.format() == GOLDEN_NOTE
    assert cosigned == {WITNESS_NAME: TS}
    # Without the witness key the cosignature is just an unknown signature.
    assert ckpt.open_checkpoint(GOLDEN_NOTE, log_v)[2] == {}


def test_golden_note_mangling() -> None:
    """No mangled copy of the cosigned checkpoint opens with both signatures."""
    log_v, wit_v = keys.parse_vkey(LOG_VKEY), witness_verifier()
    for bad in mangled(GOLDEN_NOTE):
        try:
            _, _, cosigned = ckpt.open_checkpoint(bad, log_v, [wit_v])
        except (MalformedError, VerificationError):
            continue
        assert cosigned == {}, bad


def test_log_signed_checkpoint_mangling() -> None:
    data = (TEXT + "\n" + LOG_LINE).encode()
    log_v = keys.parse_vkey(LOG_VKEY)
    assert ckpt.open_checkpoint(data, log_v)[0].size == 1000
    for bad in mangled(data):
        with pytest.raises((MalformedError, VerificationError)):
            ckpt.open_checkpoint(bad, log_v)


def test_checkpoint_text_mangling() -> None:
    good = ckpt.parse_checkpoint(TEXT)
    for bad in mangled(TEXT.encode()):
        try:
            got = ckpt.parse_checkpoint(bad.decode())
        except (MalformedError, UnicodeDecodeError):
            continue
        assert got != good, bad


# --- open_checkpoint rules ----------------------------------------------------------------------


def test_open_checkpoint_requires_log_signature() -> None:
    only_cosig = (TEXT + "\n" + COSIG_LINE).encode()
    with pytest.raises(VerificationError):
        ckpt.open_checkpoint(only_cosig, keys.parse_vkey(LOG_VKEY), [witness_verifier()])


def test_open_checkpoint_origin_must_match_log_key() -> None:
    other = keys.Signer.from_seed("example.com/other-log", hashlib.sha256(b"log-seed").digest())
    data = note.sign_note(TEXT, other).format()
    with pytest.raises(VerificationError):
        ckpt.open_checkpoint(data, other.verifier)
    with pytest.raises(MalformedError):
        ckpt.sign_checkpoint(ckpt.parse_checkpoint(TEXT), other)


def test_open_checkpoint_rejects_bad_cosignature() -> None:
    raw = bytearray(base64.b64decode(COSIG_LINE.split()[-1]))
    raw[20] ^= 1
    bad = (TEXT + "\n" + LOG_LINE + "— witness.example/w1 " + base64.b64encode(raw).decode() + "\n").encode()
    with pytest.raises(VerificationError):
        ckpt.open_checkpoint(bad, keys.parse_vkey(LOG_VKEY), [witness_verifier()])
    # Not configured: ignored.
    assert ckpt.open_checkpoint(bad, keys.parse_vkey(LOG_VKEY))[2] == {}


def test_open_checkpoint_rejects_non_checkpoint_note() -> None:
    data = note.sign_note(LOG_NAME + "\nnot a size\n" + ROOT_1000 + "\n", log_signer()).format()
    with pytest.raises(MalformedError):
        ckpt.open_checkpoint(data, log_signer().verifier)


def test_open_checkpoint_witness_keys_must_be_cosigners() -> None:
    with pytest.raises(ValueError):
        ckpt.open_checkpoint(GOLDEN_NOTE, log_signer().verifier, [witness_signer().verifier])


def test_open_checkpoint_accepts_note_object() -> None:
    n = note.parse_note(GOLDEN_NOTE)
    assert ckpt.open_checkpoint(n, log_signer().verifier, [witness_verifier()])[2] == {WITNESS_NAME: TS}


# --- checkpoint text ----------------------------------------------------------------------------

ROOT0 = base64.b64encode(hashlib.sha256(b"").digest()).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"o\n0\n{ROOT0}\n",
        f"example.com/log\n{2**63 - 1}\n{ROOT_1000}\n",
        f"example.com/log\n1\n{ROOT_1000}\next one\next two\n",
        f"a log with spaces\n10\n{ROOT_1000}\n",
        f"ünï/log\n10\n{ROOT_1000}\n— not a signature\n",
    ],
)
def test_checkpoint_round_trip(text: str) -> None:
    cp = ckpt.parse_checkpoint(text)
    assert cp.text() == text
    assert ckpt.Checkpoint(cp.origin, cp.size, cp.root, cp.extensions) == cp


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        f"o\n1\n{ROOT_1000}",  # no final newline
        "o\n1\n",  # two lines
        f"\n1\n{ROOT_1000}\n",  # empty origin
        f"o\n\n{ROOT_1000}\n",
        f"o\n01\n{ROOT_1000}\n",  # leading zero
        f"o\n00\n{ROOT_1000}\n",
        f"o\n+1\n{ROOT_1000}\n",
        f"o\n-1\n{ROOT_1000}\n",
        f"o\n 1\n{ROOT_1000}\n",
        f"o\n1 \n{ROOT_1000}\n",
        f"o\n1_000\n{ROOT_1000}\n",
        f"o\n\u0661\n{ROOT_1000}\n",  # ARABIC-INDIC DIGIT ONE
        f"o\n0x10\n{ROOT_1000}\n",
        f"o\n{2**63}\n{ROOT_1000}\n",
        f"o\n{'9' * 5000}\n{ROOT_1000}\n",
        "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "o\n1\n" + base64.b64encode(bytes(33)).decode() + "\n",
        f"o\n1\n{ROOT_1000[:-1]}\n",  # missing padding
        f"o\n1\n{ROOT_1000[:-2]}t=\n",  # non-canonical trailing bits
        f"o\n1\n {ROOT_1000}\n",
        "o\n1\n" + base64.urlsafe_b64encode(bytes([0xFB]) * 32).decode() + "\n",
        f"o\n1\n{ROOT_1000}\n\n",  # empty extension line
        f"o\n1\n{ROOT_1000}\next\n\n",
        f"o\r\n1\n{ROOT_1000}\n",
        f"o\n1\r\n{ROOT_1000}\n",
        f"o\n1\n{ROOT_1000}\r\n",
        f"o\x00\n1\n{ROOT_1000}\n",
        f"o\n1\n{ROOT_1000}\nex\tt\n",
        f"\ud800\n1\n{ROOT_1000}\n",
    ],
)
def test_parse_checkpoint_rejects(text: str) -> None:
    with pytest.raises(MalformedError) as info:
        ckpt.parse_checkpoint(text)
    assert info.value.detail == "malformed checkpoint"


@pytest.mark.parametrize(
    ("origin", "size", "root", "ext"),
    [
        ("", 1, bytes(32), ()),
        ("a\nb", 1, bytes(32), ()),
        ("o", -1, bytes(32), ()),
        ("o", 2**63, bytes(32), ()),
        ("o", 1, bytes(31), ()),
        ("o", 1, bytes(32), ("",)),
        ("o", 1, bytes(32), ("a\nb",)),
    ],
)
def test_checkpoint_validates(origin: str, size: int, root: bytes, ext: tuple[str, ...]) -> None:
    with pytest.raises(MalformedError):
        ckpt.Checkpoint(origin, size, root, ext)


# --- tlog-witness add-checkpoint ----------------------------------------------------------------

LOG_NOTE = (TEXT + "\n" + LOG_LINE).encode()


def test_add_checkpoint_golden_body() -> None:
    proof = _subproof(700, _leaves(), True)
    lines = [base64.b64encode(h).decode() for h in proof]
    assert len(lines) == 9
    assert lines[:2] == PROOF_700_FIRST
    assert lines[-1] == PROOF_700_LAST
    body = ckpt.format_add_checkpoint(700, proof, LOG_NOTE)
    assert body == ("old 700\n" + "".join(line + "\n" for line in lines) + "\n").encode() + LOG_NOTE
    assert ckpt.parse_add_checkpoint(body) == (700, proof, LOG_NOTE)


@pytest.mark.parametrize("n", [0, 1, 63])
def test_add_checkpoint_round_trip(n: int) -> None:
    proof = [_h(b"%d" % i) for i in range(n)]
    for old in (0, 5, 2**63 - 1):
        body = ckpt.format_add_checkpoint(old, proof, GOLDEN_NOTE)
        assert ckpt.parse_add_checkpoint(body) == (old, proof, GOLDEN_NOTE)


H = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "head",
    [
        "",
        "old 5\n" + f"{H}\n" * 64,  # 64 proof lines
        "old 5\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "old 5\n" + base64.b64encode(bytes(33)).decode() + "\n",
        "old 5\n" + H[:-1] + "\n",
        "old 5\n" + H[:-2] + "B=\n",  # non-canonical
        "old 5\n" + H + " \n",
        "old 5\r\n",
        "old 05\n",
        "old +5\n",
        "old -5\n",
        "old  5\n",
        "old 5 \n",
        "old\n",
        "old \n",
        "Old 5\n",
        "new 5\n",
        "5\n",
        f"{H}\nold 5\n",
        "old 5\nold 5\n",
        "old \u0665\n",
    ],
)
def test_parse_add_checkpoint_rejects(head: str) -> None:
    with pytest.raises(MalformedError) as info:
        ckpt.parse_add_checkpoint(head.encode() + b"\n" + LOG_NOTE)
    assert info.value.detail == "malformed add-checkpoint body"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 5\n",
        b"old 5\n" + LOG_NOTE,  # no blank line
        b"old 5\n" + H.encode() + b"\n" + LOG_NOTE,
        b"old 5\n\n",  # no note
        b"old 5\n\n" + LOG_NOTE[:-1],
        b"old 5\n\n" + LOG_NOTE.replace(b"1000", b"01000"),  # note is not a checkpoint
        b"old 5\n\n\n" + LOG_NOTE,
        b"old 5\n\xff\n\n" + LOG_NOTE,
    ],
)
def test_parse_add_checkpoint_rejects_bodies(body: bytes) -> None:
    with pytest.raises(MalformedError):
        ckpt.parse_add_checkpoint(body)


def test_format_add_checkpoint_refuses() -> None:
    with pytest.raises(MalformedError):
        ckpt.format_add_checkpoint(-1, [], LOG_NOTE)
    with pytest.raises(MalformedError):
        ckpt.format_add_checkpoint(2**63, [], LOG_NOTE)
    with pytest.raises(MalformedError):
        ckpt.format_add_checkpoint(1, [bytes(32)] * 64, LOG_NOTE)
    with pytest.raises(MalformedError):
        ckpt.format_add_checkpoint(1, [bytes(31)], LOG_NOTE)
    with pytest.raises(MalformedError):
        ckpt.format_add_checkpoint(1, [], b"not a note")


def test_size_body() -> None:
    assert ckpt.SIZE_CONTENT_TYPE == "text/x.tlog.size"
    for n in (0, 1, 700, 2**63 - 1):
        body = ckpt.format_size_body(n)
        assert body == b"%d\n" % n
        assert ckpt.parse_size_body(body) == n
    for bad in (
        b"",
        b"\n",
        b"1",
        b"01\n",
        b"+1\n",
        b"-1\n",
        b" 1\n",
        b"1 \n",
        b"1\n\n",
        b"1\r\n",
        b"\xd9\xa1\n",
    ):
        with pytest.raises(MalformedError):
            ckpt.parse_size_body(bad)
    for n in (-1, 2**63):
        with pytest.raises(MalformedError):
            ckpt.format_size_body(n)


# --- tlog-proof bundles -------------------------------------------------------------------------


def test_proof_bundle_layout() -> None:
    proof = _path(5, _leaves())
    assert len(proof) == 10
    data = ckpt.format_proof_bundle(5, proof, GOLDEN_NOTE, extra=b"context")
    want = (
        b"c2sp.org/tlog-proof@v1\n"
        + b"extra "
        + base64.b64encode(b"context")
        + b"\nindex 5\n"
        + b"".join(base64.b64encode(h) + b"\n" for h in proof)
        + b"\n"
        + GOLDEN_NOTE
    )
    assert data == want
    bundle = ckpt.parse_proof_bundle(data)
    assert bundle == ckpt.ProofBundle(5, tuple(proof), GOLDEN_NOTE, b"context")
    assert bundle.format() == data
    # The inclusion proof really belongs to the checkpointed tree (RFC 6962 §2.1.1).
    h, idx = _leaves()[5], 5
    for sibling in proof:
        h = _h(b"\x01" + sibling + h) if idx % 2 else _h(b"\x01" + h + sibling)
        idx //= 2
    assert h == _mth(_leaves())


@pytest.mark.parametrize(("index", "n", "extra"), [(0, 0, None), (999, 10, None), (2**63 - 1, 63, b"\x00")])
def test_proof_bundle_round_trip(index: int, n: int, extra: bytes | None) -> None:
    proof = tuple(_h(b"%d" % i) for i in range(n))
    data = ckpt.format_proof_bundle(index, proof, LOG_NOTE, extra)
    assert ckpt.parse_proof_bundle(data) == ckpt.ProofBundle(index, proof, LOG_NOTE, extra)
    assert ckpt.parse_proof_bundle(data).format() == data


@pytest.mark.parametrize(
    "head",
    [
        "",
        "index 5\n",  # no header
        "c2sp.org/tlog-proof@v2\nindex 5\n",
        "C2SP.org/tlog-proof@v1\nindex 5\n",
        "c2sp.org/tlog-proof@v1 \nindex 5\n",
        "c2sp.org/tlog-proof@v1\n",  # no index
        "c2sp.org/tlog-proof@v1\nindex 05\n",
        "c2sp.org/tlog-proof@v1\nindex -1\n",
        "c2sp.org/tlog-proof@v1\nindex +1\n",
        "c2sp.org/tlog-proof@v1\nindex\n",
        f"c2sp.org/tlog-proof@v1\nindex {2**63}\n",
        "c2sp.org/tlog-proof@v1\nextra \nindex 5\n",  # empty extra
        "c2sp.org/tlog-proof@v1\nextra AB==\nindex 5\n",  # non-canonical extra
        "c2sp.org/tlog-proof@v1\nextra AA\nindex 5\n",
        "c2sp.org/tlog-proof@v1\nindex 5\nextra AA==\n",  # extra after index
        "c2sp.org/tlog-proof@v1\nextra AA==\nextra AA==\nindex 5\n",
        "c2sp.org/tlog-proof@v1\nindex 5\n" + f"{H}\n" * 64,
        "c2sp.org/tlog-proof@v1\nindex 5\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "c2sp.org/tlog-proof@v1\nindex 5\n" + H[:-2] + "B=\n",
        "c2sp.org/tlog-proof@v1\r\nindex 5\n",
        "c2sp.org/tlog-proof@v1\nindex 5\nindex 5\n",
    ],
)
def test_parse_proof_bundle_rejects(head: str) -> None:
    with pytest.raises(MalformedError) as info:
        ckpt.parse_proof_bundle(head.encode() + b"\n" + GOLDEN_NOTE)
    assert info.value.detail == "malformed proof bundle"


def test_parse_proof_bundle_rejects_bodies() -> None:
    head = b"c2sp.org/tlog-proof@v1\nindex 5\n"
    for bad in (
        head + GOLDEN_NOTE,
        head + b"\n",
        head + b"\n" + GOLDEN_NOTE[:-1],
        head + b"\n\n" + GOLDEN_NOTE,
    ):
        with pytest.raises(MalformedError):
            ckpt.parse_proof_bundle(bad)


def test_format_proof_bundle_refuses() -> None:
    for args in [
        (-1, [], GOLDEN_NOTE, None),
        (2**63, [], GOLDEN_NOTE, None),
        (0, [bytes(32)] * 64, GOLDEN_NOTE, None),
        (0, [bytes(33)], GOLDEN_NOTE, None),
        (0, [], GOLDEN_NOTE, b""),
        (0, [], b"not a note\n\n", None),
    ]:
        with pytest.raises(MalformedError):
            ckpt.format_proof_bundle(*args)
