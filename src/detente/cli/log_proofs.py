"""`detente log show`, `log proof` and `log verify-proof`: the log's state, and one message's proof.

log show          the log's size, newest checkpoint and what each peer cosigned (GET /api/v1/log)
log proof ID      a message's tlog-proof bundle, fetched and verified here with the agreement's keys
log verify-proof  a saved bundle verified offline (`log proof --out` writes one that holds the envelope)

`detente log export` and `detente audit` are in `cli.log`, with the options shared here.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from detente.cli.arguments import CheckedCommand, check_id, segment
from detente.cli.client import load_json
from detente.cli.log import AgreementOpt, EarlierOpt, UnwitnessedOpt, earlier_agreements, load_agreement_file, log_app
from detente.cli.terminal import dump_json, printable
from detente.cli.transport import (
    API,
    ApiError,
    CertOpt,
    NodeOpt,
    TokenOpt,
    UnexpectedAnswer,
    UrlOpt,
    api,
    call,
    unreachable,
)
from detente.core import agreement as agreement_mod
from detente.core import envelope as envelope_mod
from detente.core.checkpoint import ProofBundle, parse_checkpoint, parse_proof_bundle
from detente.core.envelope import Envelope
from detente.core.note import parse_note, signature_for
from detente.core.proof_bundle import (
    ProvenEntry,
    cosigned_under,
    envelope_in,
    log_party_of,
    verify_bundle,
    with_envelope,
)
from detente.errors import BadRequest, Conflict, Error, MalformedError, VerificationError
from detente.node.config import load_config

LOG_STATE = {"origin": str, "size": int, "peers": dict}
# A bundle is a few kilobytes (a checkpoint, at most 63 hashes, an envelope of at most 60,000 bytes).
MAX_BUNDLE_BYTES = 1_000_000


@log_app.command("show", cls=CheckedCommand)
def log_show(
    token: TokenOpt,
    as_json: Annotated[bool, typer.Option("--json", help="print the node's answer as JSON")] = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Print the log's size, its newest checkpoint (the signed note, as text) and what each peer cosigned.

    Per peer: the size of its log this node cosigned as a witness, and the size of this log the
    peer cosigned. The note is the node's word until verified: `log proof` verifies one.
    """
    with api(node, url, cacert, token) as client:
        answer = call(client, "GET", "/log", expect=LOG_STATE)
    if as_json:
        print(dump_json(answer))
        return
    print(printable(f"log          {answer['origin']}  size {answer['size']}"))
    checkpoint = answer.get("checkpoint")
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("note"), str):
        print(printable(f"checkpoint   size {checkpoint.get('size')}, with the cosignatures it holds:"))
        for line in checkpoint["note"].removesuffix("\n").split("\n"):
            print(f"  {printable(line)}".rstrip())
    else:
        print("checkpoint   none signed yet")
    for party, item in sorted(answer["peers"].items()):
        peer = item if isinstance(item, dict) else {}
        theirs, ours = peer.get("cosigned_size"), peer.get("our_size_cosigned")
        if theirs is None:
            witnessed = f"this node has cosigned no checkpoint of {peer.get('origin') or party} yet"
        else:
            witnessed = (
                f"this node cosigned {peer.get('origin')} up to size {theirs} "
                f"(root {peer.get('cosigned_root')}, at {peer.get('cosigned_at')})"
            )
        print(printable(f"peer {party:<8}{witnessed}"))
        print(
            printable(
                f"             {party} cosigned "
                + ("nothing of this log yet" if ours is None else f"this log up to size {ours}")
            )
        )
        if peer.get("witnessing_error"):
            print(printable(f"             witnessing error: {peer['witnessing_error']}"))


@log_app.command("proof", cls=CheckedCommand)
def log_proof(
    token: TokenOpt,
    message: Annotated[str, typer.Argument(help="the message (envelope) id", callback=check_id)],
    log: Annotated[
        str | None, typer.Option("--log", help="prove it in this peer party's log (default: the node's own)")
    ] = None,
    agreement: AgreementOpt = None,
    earlier: EarlierOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="write the verified bundle, with the envelope in it, to this new file", dir_okay=False
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="with --out, replace a file that exists")] = False,
    allow_unwitnessed: UnwitnessedOpt = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Fetch a message's c2sp.org/tlog-proof bundle and verify it here, with the agreement's pinned keys.

    Verifies the checkpoint's signature by the log's owner, each other party's cosignature on it, and
    the inclusion proof of the envelope's bytes, and the envelope's signature under the agreement
    it names (the one in force, or one given with --earlier); prints what it verified. Exits 1
    with one line naming what failed, or if no other party cosigned the checkpoint (unless
    --allow-unwitnessed). With --out, the bundle (holding the envelope) is written for `detente log
    verify-proof`, to a file that does not exist yet (unless --force).
    """
    doc = _agreement(agreement, node)
    before = earlier_agreements(doc, earlier)
    _check_party(doc, log, "--log")
    if force and out is None:
        raise typer.BadParameter("--force replaces the file of --out: give --out FILE", param_hint="'--force'")
    if out is not None and not force and os.path.lexists(out):
        raise Conflict(f"{out} exists: name a new file, or give --force to replace it")
    where = f"/messages/{segment(message)}"
    with api(node, url, cacert, token) as client:
        answer = call(client, "GET", where, expect={"id": str, "envelope": dict})
        envelope = _answered_envelope(answer, message)
        raw = _fetch(client, f"{where}/proof", {} if log is None else {"log": log})
    try:
        bundle = parse_proof_bundle(raw)
    except MalformedError:
        raise UnexpectedAnswer(f"the node's answer to GET {API}{where}/proof is not a tlog-proof bundle") from None
    entry = _verify(bundle, envelope, doc, before, log, allow_unwitnessed, live=True)
    _print_entry(doc, before, entry)
    if out is not None:
        _write(out, with_envelope(bundle, envelope), force)
        print(f"wrote        {out}")


@log_app.command("verify-proof", cls=CheckedCommand)
def log_verify_proof(
    file: Annotated[
        Path, typer.Argument(help="a .tlog-proof file, as `log proof --out` writes it", exists=True, dir_okay=False)
    ],
    agreement: Annotated[
        Path, typer.Option("--agreement", help="your own copy of the agreement", exists=True, dir_okay=False)
    ],
    envelope_file: Annotated[
        Path | None,
        typer.Option(
            "--envelope",
            help="the envelope as JSON (what `detente message ID` prints, or its `envelope`), for a bundle that "
            "holds none (`log proof --out` and the API's downloads hold it)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    log: Annotated[
        str | None, typer.Option("--log", help="the party whose log you expect (fail if it is another's)")
    ] = None,
    earlier: EarlierOpt = None,
    allow_unwitnessed: UnwitnessedOpt = False,
) -> None:
    """Verify a saved tlog-proof bundle offline, with the agreement's pinned keys; nothing is asked of a node.

    The envelope is the one the bundle's `extra` line holds (`log proof --out` and the API's
    downloads, `GET /api/v1/messages/{id}/proof`, put it there), or the one given with --envelope
    (for a bundle that holds none, from another tool). Checks (an envelope sealed under an earlier
    agreement needs it, with --earlier) and exit status as `log proof`.
    """
    doc = load_agreement_file(agreement)
    before = earlier_agreements(doc, earlier)
    _check_party(doc, log, "--log")
    try:
        bundle = parse_proof_bundle(_read(file, MAX_BUNDLE_BYTES))
    except MalformedError:
        raise MalformedError(f"{file} is not a tlog-proof bundle (c2sp.org/tlog-proof@v1)") from None
    if envelope_file is not None:
        envelope = _envelope_file(envelope_file)
    else:
        try:
            envelope = envelope_in(bundle)
        except Error as exc:
            hint = ": give the envelope with --envelope FILE" if bundle.extra is None else ""
            raise BadRequest(f"{file}: {exc.detail}{hint}") from None
    entry = _verify(bundle, envelope, doc, before, log, allow_unwitnessed, live=False)
    _print_entry(doc, before, entry)


def _agreement(path: Path | None, node: Path | None) -> agreement_mod.Agreement:
    """Return the agreement given with --agreement, else the one in the --node directory.

    Raises `BadParameter` (a usage error) with neither, and what `agreement_text` and
    `agreement.load` raise for a file that is not an agreement.
    """
    if path is None:
        if node is None:
            raise typer.BadParameter(
                "give your copy of the agreement, or --node DIR to use its agreement.toml", param_hint="'--agreement'"
            )
        path = load_config(node).agreement_path
    return load_agreement_file(path)


def _check_party(doc: agreement_mod.Agreement, party: str | None, option: str) -> None:
    """Raise `BadParameter` (a usage error) if `party` is given and is not a party of the agreement."""
    if party is not None and party not in doc.parties:
        known = ", ".join(sorted(doc.parties))
        raise typer.BadParameter(f"{party!r} is not a party of this agreement ({known})", param_hint=option)


def _answered_envelope(answer: dict[str, Any], message: str) -> Envelope:
    """Return the envelope of the node's message view. Raises `UnexpectedAnswer` for another or a bad one."""
    try:
        envelope = envelope_mod.parse(answer["envelope"])
    except Error as exc:
        raise UnexpectedAnswer(f"the node's answer holds no valid envelope: {exc.detail}") from None
    if envelope.id != message:
        raise UnexpectedAnswer(f"the node answered with envelope {envelope.id}, not {message}")
    return envelope


def _fetch(client: httpx.Client, path: str, params: dict[str, str]) -> bytes:
    """GET `path` and return the body of a 200 answer.

    Raises `ApiError` with the node's message for a 4xx or 5xx, `UnexpectedAnswer` for any other
    answer but 200, `Unavailable` if the node cannot be reached (as `transport.call` does).
    """
    request = f"GET {API}{path}"
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise unreachable(client, exc) from exc
    status = response.status_code
    if status >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            raise ApiError(status, str(body["error"]), str(body.get("detail", "")))
    if status != 200:
        raise UnexpectedAnswer(f"the node answered {request} with {status} {response.reason_phrase}, not a bundle")
    return response.content


def _write(path: Path, data: bytes, force: bool) -> None:
    """Write `data` to `path`, a new file unless `force`.

    Raises `Conflict` if `path` exists (even as a dangling link) and not `force`, nothing written;
    `BadRequest` if it cannot be written.
    """
    try:
        with path.open("wb" if force else "xb") as f:
            f.write(data)
    except FileExistsError:
        raise Conflict(f"{path} exists: name a new file, or give --force to replace it") from None
    except OSError as exc:
        raise BadRequest(f"cannot write {path}: {exc.strerror or exc}") from exc


def _read(path: Path, limit: int) -> bytes:
    """Return the bytes of `path`. Raises `BadRequest` if it cannot be read or is over `limit` bytes."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise BadRequest(f"{path} is larger than {limit} bytes: no proof bundle is")
    return data


def _envelope_file(path: Path) -> Envelope:
    """Return the envelope in a JSON file: an envelope, or a message view holding one as `envelope`.

    Raises `BadRequest` naming the file if it holds neither.
    """
    value = load_json(_read(path, MAX_BUNDLE_BYTES), str(path))
    if isinstance(value, dict) and isinstance(value.get("envelope"), dict):
        value = value["envelope"]
    if not isinstance(value, dict):
        raise BadRequest(f"{path} holds no envelope: it is not a JSON object")
    try:
        return envelope_mod.parse(value)
    except Error as exc:
        raise BadRequest(f"{path} holds no envelope: {exc.detail}") from None


def _verify(
    bundle: ProofBundle,
    envelope: Envelope,
    doc: agreement_mod.Agreement,
    earlier: list[agreement_mod.Agreement],
    log: str | None,
    allow_unwitnessed: bool,
    *,
    live: bool,
) -> ProvenEntry:
    """Verify the bundle (`core.proof_bundle.verify_bundle`) and that another party witnessed it.

    Raises `VerificationError` naming what failed; a checkpoint no other party cosigned is one
    unless `allow_unwitnessed` (`live`: the bundle was just fetched, and asking again may find it
    cosigned; else it is a saved file), naming the `earlier` agreement whose keys did cosign it,
    if one does.
    """
    try:
        entry = verify_bundle(bundle, envelope, doc, log_party=log, earlier=earlier)
    except VerificationError as exc:
        raise VerificationError(f"{exc.detail}{_rotated_key(bundle, doc)}") from None
    if not entry.witnessed and not allow_unwitnessed:
        raise VerificationError(_earlier_cosigners(bundle, entry, doc, earlier) or _unwitnessed(entry, live=live))
    return entry


def _unwitnessed(entry: ProvenEntry, *, live: bool) -> str:
    """Return why a checkpoint no other party cosigned fails, and what to do (`live`: it was just fetched)."""
    again = (
        "a checkpoint is usually cosigned within a second: try again"
        if live
        else "a saved bundle stays as it is: fetch a newer one with `log proof`"
    )
    return (
        f"no other party cosigned the checkpoint of {entry.origin} at size {entry.size}: it rests on "
        f"{entry.log_party}'s word alone ({again}, or accept it with --allow-unwitnessed)"
    )


def _earlier_cosigners(
    bundle: ProofBundle, entry: ProvenEntry, doc: agreement_mod.Agreement, earlier: list[agreement_mod.Agreement]
) -> str:
    """Return, for an unwitnessed checkpoint that parties cosigned with keys an --earlier agreement pins, which.

    A proof saved before a witness rotated its key holds that witness's cosignature by its key of
    then: the checkpoint is checked with the keys of one agreement, so it verifies with the
    agreement of its time as --agreement. Empty when no earlier agreement given explains it.
    Raises nothing.
    """
    for older in earlier:
        parties = cosigned_under(bundle, older)
        if parties:
            whose = "its key" if len(parties) == 1 else "their keys"
            return (
                f"{', '.join(parties)} cosigned the checkpoint of {entry.origin} at size {entry.size} with {whose} "
                f"pinned by earlier agreement {older.id} {older.hash[:12]}…, not by agreement {doc.id} "
                f"{doc.hash[:12]}…: a checkpoint is checked with the keys of one agreement, so a proof saved before a "
                f"key rotation verifies with the agreement of its time as --agreement ({older.hash[:12]}…)"
            )
    return ""


def _rotated_key(bundle: ProofBundle, doc: agreement_mod.Agreement) -> str:
    """Return, for a checkpoint signed by a key of its log's name other than the one `doc` pins, which.

    Empty when the pinned key signed it (the failure is elsewhere) or no key of that name did.
    Raises nothing.
    """
    try:
        note = parse_note(bundle.note_bytes)
        party = log_party_of(parse_checkpoint(note.text).origin, doc)
        pinned = party.verifier()
    except Error:
        return ""
    others = [sig.key_id.hex() for sig in note.signatures if sig.name == pinned.name]
    if signature_for(note, pinned) is not None or not others:
        return ""
    return (
        f" (it is signed by key {', '.join(others)}; {doc.id} pins key {pinned.key_id.hex()}): if the proof was "
        "saved before an amendment that rotated this key, give the agreement in force before it with --earlier"
    )


def _time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_entry(doc: agreement_mod.Agreement, earlier: list[agreement_mod.Agreement], entry: ProvenEntry) -> None:
    """Print what a verified bundle proved, one fact a line."""
    envelope = entry.envelope
    sealed = next((a for a in earlier if a.hash == envelope.data["agreement"]), None)
    if sealed is None:
        signature = f"signature verifies ({envelope.sender_party}'s pinned key)"
    else:
        signature = (
            f"signature verifies ({envelope.sender_party}'s key pinned by earlier agreement {sealed.id} "
            f"{sealed.hash[:12]}…)"
        )
    lines = [
        f"agreement    {doc.id} {doc.hash}",
        *(f"earlier      {a.id} {a.hash}" for a in earlier),
        f"envelope     {envelope.id} {envelope.sender} → {envelope.recipient} {envelope.type}, {signature}",
        f"log          {entry.origin} (party {entry.log_party})",
        f"leaf index   {entry.index}",
        f"tree size    {entry.size}  root {base64.b64encode(entry.root).decode()}",
        f"checkpoint   signed by {entry.log_party} ({entry.origin}), the key the agreement pins",
    ]
    for party, at in sorted(entry.cosigned_by.items()):
        lines.append(f"cosigned by  {party} ({doc.parties[party].log_origin}) at {_time(at)}")
    if entry.not_cosigned_by:
        lines.append(f"not cosigned by {', '.join(entry.not_cosigned_by)}")
    if not entry.witnessed:
        lines.append(
            f"warning      no other party cosigned this checkpoint: it rests on {entry.log_party}'s word alone"
        )
    lines.append("inclusion proof verifies")
    print("\n".join(printable(line) for line in lines))
