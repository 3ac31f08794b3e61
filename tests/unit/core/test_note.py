"""Tests for `detente.core.note`: C2SP signed notes and cosignature/v1 (Go `sumdb/note` style)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from detente.core import keys, note
from detente.errors import MalformedError, VerificationError
from mangling import mangled

# c2sp.org/signed-note test vector (ledger.md §2.1).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()
# The example at the top of c2sp.org/signed-note (its key is not published).
QUASIMODO = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
).encode()
TS = 1_700_000_000


def signer(name: str = "example.com/signer", seed: bytes = b"signer") -> keys.Signer:
    return keys.Signer.from_seed(name, hashlib.sha256(seed).digest())


def cosigner(name: str = "witness.example/w1", seed: bytes = b"witness") -> keys.Signer:
    return signer(name, seed)


def cosig_verifier(s: keys.Signer) -> keys.Verifier:
    return s.verifier.with_alg(keys.ALG_COSIGNATURE_V1)


def fake_sig(name: str, i: int) -> note.NoteSignature:
    return note.NoteSignature(name, i.to_bytes(4, "big"), bytes(64))


# --- the spec vector ----------------------------------------------------------------------------


def test_spec_note_verifies() -> None:
    v = keys.parse_vkey(SPEC_VKEY)
    n, matched = note.open_note(SPEC_NOTE, [v])
    assert n.text == "This is an example message.\n"
    assert matched == [v]
    assert n.signatures[0].name == "example.com/foo"
    assert n.signatures[0].key_id == bytes.fromhex("530d903a")
    assert n.format() == SPEC_NOTE


def test_quasimodo_parses_and_splits_at_last_blank_line() -> None:
    n = note.parse_note(QUASIMODO)
    assert n.text.endswith("\n\ned è subito sera.\n")
    assert [s.name for s in n.signatures] == ["quasimodo.example/salvatore"]
    assert n.format() == QUASIMODO
    with pytest.raises(VerificationError):  # its only signature is from an unknown key
        note.open_note(QUASIMODO, [keys.parse_vkey(SPEC_VKEY)])


def test_spec_note_mangling() -> None:
    v = keys.parse_vkey(SPEC_VKEY)
    for bad in mangled(SPEC_NOTE):
        with pytest.raises((MalformedError, VerificationError)):
            note.open_note(bad, [v])


# --- signing, round trips -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "hello\n",
        "\n",
        "a\n\nb\n",
        "a\n\n\n",  # text ending in blank lines: the separator is still the last one
        "— looks like a signature AAAAAAA=\n\n— x AAAAAAA=\n",
        "ünïcödé ✓ \U0001f600\n",
        "tab-free but has DEL \x7f\n",  # signed-note only forbids characters below U+0020
    ],
)
def test_sign_open_round_trip(text: str) -> None:
    s = signer()
    n = note.sign_note(text, s)
    data = n.format()
    assert data == text.encode() + b"\n" + n.signatures[0].line().encode()
    assert note.parse_note(data) == n
    assert note.parse_note(data).format() == data
    opened, matched = note.open_note(data, [s.verifier])
    assert opened == n
    assert matched == [s.verifier]


def test_signature_line_format() -> None:
    sig = note.NoteSignature("example.com/a", b"\x01\x02\x03\x04", b"\xff" * 3)
    b64 = base64.b64encode(b"\x01\x02\x03\x04\xff\xff\xff").decode()
    assert sig.line() == "\u2014 example.com/a " + b64 + "\n"


def test_sign_note_is_deterministic_and_typed() -> None:
    s = signer()
    a, b = note.sign_note("x\n", s), note.sign_note("x\n", s)
    assert a == b
    assert a.signatures[0].key_id == keys.key_id(s.name, keys.ALG_ED25519, s.public)
    assert len(a.signatures[0].sig) == 64


@pytest.mark.parametrize("text", ["", "no newline", "a\r\n", "a\x00\n", "\ud800\n"])
def test_sign_note_rejects_bad_text(text: str) -> None:
    with pytest.raises(MalformedError):
        note.sign_note(text, signer())


def test_add_signatures_never_duplicates() -> None:
    s1, s2 = signer("a.example/1", b"1"), signer("b.example/2", b"2")
    n = note.sign_note("text\n", s1)
    other = note.sign_note("text\n", s2).signatures[0]
    both = note.add_signatures(n, other, other, n.signatures[0])
    assert both.signatures == (n.signatures[0], other)
    assert note.add_signatures(both, other) == both
    # Same (name, key id) with different bytes: the first one stays.
    forged = note.NoteSignature(other.name, other.key_id, bytes(64))
    assert note.add_signatures(both, forged) == both
    assert note.open_note(both.format(), [s1.verifier, s2.verifier])[1] == [s1.verifier, s2.verifier]


def test_add_signatures_caps_at_100() -> None:
    n = note.sign_note("text\n", signer())
    full = note.add_signatures(n, *(fake_sig("x.example", i) for i in range(99)))
    assert len(full.signatures) == 100
    with pytest.raises(MalformedError):
        note.add_signatures(full, fake_sig("x.example", 1000))


# --- verification rules -------------------------------------------------------------------------


def test_unknown_signatures_are_ignored() -> None:
    s = signer()
    n = note.add_signatures(note.sign_note("t\n", s), fake_sig("unknown.example", 7))
    # Same name as a known key but another key id: unknown, ignored.
    n = note.add_signatures(n, fake_sig(s.name, 8))
    assert note.open_note(n.format(), [s.verifier])[1] == [s.verifier]


def test_no_known_signature_fails() -> None:
    n = note.sign_note("t\n", signer())
    with pytest.raises(VerificationError):
        note.open_note(n.format(), [signer("example.com/other", b"other").verifier])
    with pytest.raises(VerificationError):
        note.open_note(n.format(), [])


def test_known_bad_signature_rejects_whole_note() -> None:
    good, bad = signer("a.example", b"a"), signer("b.example", b"b")
    n = note.sign_note("t\n", good)
    sig = note.sign_note("t\n", bad).signatures[0]
    broken = note.NoteSignature(sig.name, sig.key_id, bytes([sig.sig[0] ^ 1]) + sig.sig[1:])
    n = note.add_signatures(n, broken)
    with pytest.raises(VerificationError):
        note.open_note(n.format(), [good.verifier, bad.verifier])
    # Without the broken key configured, the note opens with the good one.
    assert note.open_note(n.format(), [good.verifier])[1] == [good.verifier]


def test_signature_by_another_key_under_known_id_fails() -> None:
    s, impostor = signer(), signer(seed=b"impostor")
    text = "t\n"
    forged = note.NoteSignature(s.name, s.verifier.key_id, impostor.sign(text.encode()))
    with pytest.raises(VerificationError):
        note.open_note(note.Note(text, (forged,)), [s.verifier])


def test_wrong_length_signature_fails() -> None:
    s = signer()
    for sig in (bytes(63), bytes(65), bytes(72)):
        with pytest.raises(VerificationError):
            bad = note.Note("t\n", (note.NoteSignature(s.name, s.verifier.key_id, sig),))
            note.open_note(bad, [s.verifier])


def test_open_note_accepts_a_note_object() -> None:
    s = signer()
    n = note.sign_note("t\n", s)
    assert note.open_note(n, [s.verifier]) == (n, [s.verifier])


def test_open_note_refuses_bad_verifier_sets() -> None:
    s = signer()
    n = note.sign_note("t\n", s).format()
    with pytest.raises(ValueError):
        note.open_note(n, [keys.Verifier(s.name, 0x02, s.public)])
    # Same verifier twice is fine; two different keys claiming one (name, id) are ambiguous.
    assert note.open_note(n, [s.verifier, s.verifier])[1] == [s.verifier]

    class Colliding(keys.Verifier):
        @property
        def key_id(self) -> keys.KeyID:
            return s.verifier.key_id

    with pytest.raises(ValueError):
        note.open_note(n, [s.verifier, Colliding(s.name, keys.ALG_ED25519, bytes(32))])


# --- strict parsing -----------------------------------------------------------------------------

GOOD_LINE = SPEC_NOTE.split(b"\n\n")[1]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n",
        b"\n\n",
        b"text\n\n",  # no signature
        b"text\n" + GOOD_LINE,  # no blank line
        b"text\n\n" + GOOD_LINE[:-1],  # no final newline
        b"text\n\n" + GOOD_LINE + b"\n",  # blank line after the signatures
        b"text\n\n" + GOOD_LINE.replace(b"\n", b"\r\n"),
        b"text\r\n\n" + GOOD_LINE,
        b"te\x00xt\n\n" + GOOD_LINE,
        b"te\txt\n\n" + GOOD_LINE,
        b"te\x1bxt\n\n" + GOOD_LINE,
        b"te\x1fxt\n\n" + GOOD_LINE,
        b"te\x0bxt\n\n" + GOOD_LINE,
        b"te\xffxt\n\n" + GOOD_LINE,  # not UTF-8
        b"te\xc0\xafxt\n\n" + GOOD_LINE,  # overlong
        b"te\xed\xa0\x80xt\n\n" + GOOD_LINE,  # encoded surrogate
        b"text\n\n" + GOOD_LINE.replace("\u2014".encode(), b"-"),
        b"text\n\n" + GOOD_LINE.replace("\u2014 ".encode(), "\u2014".encode()),
        b"text\n\n" + GOOD_LINE.replace(b"foo ", b"foo  "),
        b"text\n\n" + GOOD_LINE.replace(b"foo ", b"foo\t"),
        b"text\n\n" + GOOD_LINE.replace(b"example.com/foo", b"example.com+foo"),
        b"text\n\n" + GOOD_LINE.replace(b"example.com/foo", b""),
        b"text\n\n" + GOOD_LINE.replace(b"example.com/foo", "example.com\u00a0foo".encode()),
        b"text\n\n" + GOOD_LINE.replace(b"QM=", b"QN="),  # non-canonical base64
        b"text\n\n" + GOOD_LINE.replace(b"QM=", b"QM"),  # missing padding
        b"text\n\n" + GOOD_LINE.replace(b"QM=", b"QM=="),
        b"text\n\n" + GOOD_LINE.replace(b"Uw2Q", b"Uw 2Q"),
        b"text\n\n" + GOOD_LINE.replace(b"\n", b" \n"),
        b"text\n\n\xe2\x80\x94 example.com/foo AAAAAA==\n",  # 4 bytes: no signature
        b"text\n\n\xe2\x80\x94 example.com/foo \n",
        b"text\n\n\xe2\x80\x94 example.com/foo\n",
        b"text\n\n" + GOOD_LINE + GOOD_LINE,  # duplicate line
    ],
)
def test_parse_note_rejects(data: bytes) -> None:
    with pytest.raises(MalformedError) as info:
        note.parse_note(data)
    assert info.value.detail == "malformed note"


def test_duplicate_name_and_key_id_rejected() -> None:
    line = note.NoteSignature("a.example", b"\x00\x00\x00\x01", bytes(64)).line().encode()
    other = note.NoteSignature("a.example", b"\x00\x00\x00\x01", bytes(63) + b"\x01").line().encode()
    with pytest.raises(MalformedError):
        note.parse_note(b"t\n\n" + line + other)
    with pytest.raises(MalformedError):
        note.Note("t\n", (note.parse_signature_lines(line)[0],) * 2)
    # Same name, other key id: fine.
    third = note.NoteSignature("a.example", b"\x00\x00\x00\x02", bytes(64)).line().encode()
    assert len(note.parse_note(b"t\n\n" + line + third).signatures) == 2


def test_signature_count_limit() -> None:
    lines = b"".join(fake_sig("x.example", i).line().encode() for i in range(101))
    hundred = b"t\n\n" + lines[: len(lines) // 101 * 100]
    assert len(note.parse_note(hundred).signatures) == 100
    with pytest.raises(MalformedError):
        note.parse_note(b"t\n\n" + lines)
    with pytest.raises(MalformedError):
        note.parse_signature_lines(lines)
    with pytest.raises(MalformedError):
        note.parse_signature_lines(b"\n" * (note.MAX_NOTE_BYTES + 1))


def test_size_limit() -> None:
    line = fake_sig("x.example", 1).line().encode()
    text = b"a" * (note.MAX_NOTE_BYTES - len(line) - 2) + b"\n"
    data = text + b"\n" + line
    assert len(data) == note.MAX_NOTE_BYTES
    assert note.parse_note(data).format() == data
    with pytest.raises(MalformedError):
        note.parse_note(b"a" + data)
    with pytest.raises(MalformedError):
        note.Note("a" + text.decode(), (fake_sig("x.example", 1),))


def test_minimum_signature_length() -> None:
    five = "\u2014 a.example " + base64.b64encode(b"\x00\x00\x00\x01\x02").decode() + "\n"
    assert note.parse_note(b"t\n\n" + five.encode()).signatures[0].sig == b"\x02"


@pytest.mark.parametrize(
    ("name", "kid", "sig"),
    [("", b"\x00" * 4, b"x"), ("a b", b"\x00" * 4, b"x"), ("a", b"\x00" * 3, b"x"), ("a", b"\x00" * 4, b"")],
)
def test_note_signature_validates(name: str, kid: bytes, sig: bytes) -> None:
    with pytest.raises(MalformedError):
        note.NoteSignature(name, kid, sig)


def test_note_validates() -> None:
    sig = fake_sig("a.example", 1)
    with pytest.raises(MalformedError):
        note.Note("t\n", ())
    for text in ("", "t", "t\r\n", "\x00\n"):
        with pytest.raises(MalformedError):
            note.Note(text, (sig,))


def test_signature_lines_round_trip() -> None:
    sigs = (fake_sig("a.example", 1), cosign_line("t\n"))
    body = note.format_signature_lines(sigs)
    assert note.parse_signature_lines(body) == sigs
    for bad in (b"", b"\n", body[:-1], body + b"\n", b"\xff", body.replace(b"\n", b"\r\n", 1)):
        with pytest.raises(MalformedError):
            note.parse_signature_lines(bad)


def test_canonical_b64decode() -> None:
    assert note.canonical_b64decode("AA==") == b"\x00"
    assert note.canonical_b64decode("") == b""
    for bad in ("AB==", "AA=", "AA", "A===", "AA==\n", " AA==", "AA==AA==", "AA-_", "ÄA==", "AA=A"):
        assert note.canonical_b64decode(bad) is None, bad


def test_parse_errors_never_leak() -> None:
    """Whatever bytes come in, `parse_note` raises only `MalformedError`."""
    samples = [bytes([b]) * 3 for b in range(256)] + [SPEC_NOTE[:k] + b"\xff" for k in range(len(SPEC_NOTE))]
    for data in samples:
        try:
            note.parse_note(data)
        except MalformedError:
            pass


# --- cosignature/v1 -----------------------------------------------------------------------------


def cosign_line(text: str, ts: int = TS) -> note.NoteSignature:
    return note.cosign(text, cosigner(), ts)


def test_cosign_and_open() -> None:
    w = cosigner()
    text = "example.com/log\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    sig = note.cosign(text, w, TS)
    assert sig.key_id == keys.key_id(w.name, keys.ALG_COSIGNATURE_V1, w.public)
    assert len(sig.sig) == 72
    assert sig.sig[:8] == TS.to_bytes(8, "big")
    assert note.cosignature_time(sig) == TS
    msg = b"cosignature/v1\ntime 1700000000\n" + text.encode()
    assert note.cosignature_message(text, TS) == msg
    assert w.verifier.verify(sig.sig[8:], msg)
    n = note.Note(text, (sig,))
    assert note.open_note(n.format(), [cosig_verifier(w)])[1] == [cosig_verifier(w)]
    assert note.signature_for(n, cosig_verifier(w)) == sig
    assert note.signature_for(n, w.verifier) is None
    # The plain Ed25519 key of the same name has another key id: the cosignature is not its.
    with pytest.raises(VerificationError):
        note.open_note(n, [w.verifier])


def test_cosignature_wrong_timestamp_fails() -> None:
    w = cosigner()
    sig = cosign_line("t\n")
    moved = note.NoteSignature(sig.name, sig.key_id, (TS + 1).to_bytes(8, "big") + sig.sig[8:])
    with pytest.raises(VerificationError):
        note.open_note(note.Note("t\n", (moved,)), [cosig_verifier(w)])


def test_cosignature_altered_text_fails() -> None:
    sig = cosign_line("t\n")
    with pytest.raises(VerificationError):
        note.open_note(note.Note("u\n", (sig,)), [cosig_verifier(cosigner())])


def test_cosignature_wrong_key_fails() -> None:
    w, other = cosigner(), cosigner(seed=b"other")
    sig = cosign_line("t\n")
    # A verifier for another key under the same name has another key id: nothing verifies.
    with pytest.raises(VerificationError):
        note.open_note(note.Note("t\n", (sig,)), [cosig_verifier(other)])
    # Another key's cosignature presented under the right key id: invalid.
    forged = note.NoteSignature(w.name, sig.key_id, note.cosign("t\n", other, TS).sig)
    with pytest.raises(VerificationError):
        note.open_note(note.Note("t\n", (forged,)), [cosig_verifier(w)])


def test_cosignature_with_plain_signature_bytes_fails() -> None:
    w = cosigner()
    plain = w.sign(b"t\n")  # 64 bytes, not a timestamped_signature
    sig = note.NoteSignature(w.name, cosig_verifier(w).key_id, plain)
    with pytest.raises(VerificationError):
        note.open_note(note.Note("t\n", (sig,)), [cosig_verifier(w)])
    with pytest.raises(MalformedError):
        note.cosignature_time(sig)


def test_cosignature_timestamp_above_2_63_fails() -> None:
    w = cosigner()
    ts = 2**63
    raw = w.sign(note.cosignature_message("t\n", ts))
    sig = note.NoteSignature(w.name, cosig_verifier(w).key_id, ts.to_bytes(8, "big") + raw)
    with pytest.raises(VerificationError):
        note.open_note(note.Note("t\n", (sig,)), [cosig_verifier(w)])
    with pytest.raises(MalformedError):
        note.cosignature_time(sig)


@pytest.mark.parametrize("ts", [0, -1, 2**63, 2**64])
def test_cosign_refuses_bad_timestamps(ts: int) -> None:
    with pytest.raises(MalformedError):
        note.cosign("t\n", cosigner(), ts)


def test_cosign_accepts_max_timestamp() -> None:
    sig = note.cosign("t\n", cosigner(), 2**63 - 1)
    assert note.cosignature_time(sig) == 2**63 - 1
    note.open_note(note.Note("t\n", (sig,)), [cosig_verifier(cosigner())])


def test_cosign_refuses_bad_text() -> None:
    with pytest.raises(MalformedError):
        note.cosign("no newline", cosigner(), TS)


def test_note_with_signature_and_cosignature_mangling() -> None:
    """Mangled copies never open with both signatures verified."""
    s, w = signer(), cosigner()
    text = "example.com/signer\n2\n" + base64.b64encode(bytes(range(32))).decode() + "\n"
    data = note.add_signatures(note.sign_note(text, s), note.cosign(text, w, TS)).format()
    both = [s.verifier, cosig_verifier(w)]
    assert note.open_note(data, both)[1] == both
    for bad in mangled(data):
        try:
            _, matched = note.open_note(bad, both)
        except (MalformedError, VerificationError):
            continue
        assert len(matched) < 2, bad
