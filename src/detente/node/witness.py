"""The witness: this node cosigns its peers' checkpoints (c2sp.org/tlog-witness `add-checkpoint`).

For each peer log (origin `<party>.detente/log`) the witness keeps the latest size and root it
cosigned (`witness_state`). A submission is checked in two steps:

1. `check_submission`, outside the writer: the body parses (else 400), the origin is a peer's
   log (else 404), the log's own signature verifies with the key the agreement pins (else 403),
   and `old` is not larger than the checkpoint's size (else 400).
2. `add_checkpoint_job`, in the writer, so that the comparison with the stored state and the new
   state commit together (the spec's rollback race cannot happen): `old` must be the cosigned
   size (else 409 with that size), an `old 0` proof must be empty and a size-0 root must be
   SHA-256("") (else 422), and the consistency proof from the cosigned checkpoint must verify
   (else 422 and a fork alarm). Then the witness cosigns (cosignature/v1, node key), stores the
   new state and its history row, and answers the signature line.

A fork alarm keeps, as JSON evidence that stands on its own: the checkpoint the witness had
cosigned (with the log's signature and our cosignature), the checkpoint now presented, the
consistency proof sent with it, the log's vkey, and what failed.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from detente.core import keys
from detente.core.checkpoint import Checkpoint, format_size_body, open_checkpoint, parse_add_checkpoint
from detente.core.envelope import uuid7
from detente.core.merkle import EMPTY_ROOT
from detente.core.merkle_verify import verify_consistency
from detente.core.note import Note, add_signatures, cosign, parse_note, parse_signature_lines
from detente.core.precedence import format_time, now
from detente.errors import BadRequest, Forbidden, MalformedError, NotFound, VerificationError
from detente.node.context import NodeContext
from detente.node.events import Event
from detente.store import tlog

SIZE_MEDIA_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class Submission:
    """A parsed add-checkpoint request whose log signature verified."""

    submitter: str
    log_party: str
    old: int
    proof: tuple[bytes, ...]
    note: Note
    checkpoint: Checkpoint


@dataclass(frozen=True)
class Answer:
    """The witness's answer: HTTP status, body and media type, and the alarm it raised (if any)."""

    status: int
    body: bytes
    media_type: str
    alarm: Event | None = None
    detail: str = ""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def witness_verifier(ctx: NodeContext, party: str) -> keys.Verifier:
    """Return the cosignature/v1 key of `party` as a witness: its pinned node key with type 0x04."""
    return ctx.agreement.party(party).verifier().with_alg(keys.ALG_COSIGNATURE_V1)


def check_submission(ctx: NodeContext, submitter: str, body: bytes) -> Submission:
    """Parse and authenticate an add-checkpoint body sent by the peer node `submitter`.

    Raises `MalformedError` (400) for a malformed body, `NotFound` (404) for an origin that is not
    a peer's log, `Forbidden` (403) if the log's signature is missing or fails, and `BadRequest`
    (400) if `old` is larger than the checkpoint's size.
    """
    old, proof, note_bytes = parse_add_checkpoint(body)
    note = parse_note(note_bytes)
    origins = {p.log_origin: p.id for p in ctx.agreement.peers(ctx.party)}
    text_origin = note.text.split("\n", 1)[0]
    log_party = origins.get(text_origin)
    if log_party is None:
        raise NotFound("unknown log origin")
    try:
        cp, _, _ = open_checkpoint(note, ctx.agreement.party(log_party).verifier())
    except (VerificationError, MalformedError) as exc:
        raise Forbidden("the checkpoint is not signed by the log's pinned key") from exc
    if old > cp.size:
        raise BadRequest(f"old size {old} is larger than the checkpoint size {cp.size}")
    return Submission(submitter, log_party, old, tuple(proof), note, cp)


def _cosigned_note(conn: Connection, origin: str, state: Any) -> str:
    """Return the note we had cosigned, with our cosignature, as text (for alarm evidence)."""
    note = parse_note(bytes(state["note"]))
    row = tlog.witnessed_at(conn, origin, int(state["size"]))
    if row is not None:
        note = add_signatures(note, *parse_signature_lines((str(row["cosignature"]) + "\n").encode()))
    return note.format().decode()


def _fork_alarm(ctx: NodeContext, conn: Connection, sub: Submission, state: Any, reason: str) -> Event | None:
    """Record a fork alarm with its evidence; return its event, or None if this fork is known already.

    A log that forked keeps presenting checkpoints (a new one at each append), and this node keeps
    refusing them, since its witness state cannot move past the fork. One alarm per fork, against the
    same cosigned checkpoint, keeps the first evidence in sight instead of burying it under dozens.
    """
    cp = sub.checkpoint
    known = tlog.latest_alarm(conn, "fork", cp.origin)
    cosigned_root = _b64(bytes(state["root"]))
    if known is not None and known["evidence"]["cosigned"] == {
        **known["evidence"]["cosigned"],
        "size": int(state["size"]),
        "root": cosigned_root,
    }:
        return None
    party = ctx.agreement.party(sub.log_party)
    evidence = {
        "kind": "fork",
        "origin": cp.origin,
        "log_vkey": party.vkey,
        "witness_vkey": witness_verifier(ctx, ctx.party).vkey(),
        "submitted_by": sub.submitter,
        "reason": reason,
        "cosigned": {"size": int(state["size"]), "root": _b64(bytes(state["root"])),
                     "note": _cosigned_note(conn, cp.origin, state)},
        "presented": {"old": sub.old, "size": cp.size, "root": _b64(cp.root), "note": sub.note.format().decode()},
        "proof": [_b64(p) for p in sub.proof],
    }  # fmt: skip
    summary = (
        f"{sub.log_party}'s log presented size {cp.size} inconsistent with size {int(state['size'])} "
        f"that this node cosigned: {reason}"
    )
    alarm_id = uuid7()
    at = format_time(now())
    tlog.insert_alarm(conn, alarm_id, "fork", sub.log_party, cp.origin, summary, evidence, at)
    data = {"kind": "fork", "peer": sub.log_party, "origin": cp.origin, "summary": summary, "created": at}
    return Event("alarm", alarm_id, (), data, everyone=True)


def add_checkpoint_job(ctx: NodeContext, sub: Submission) -> Callable[[Connection], Answer]:
    """Return the writer job that checks `sub` against the stored witness state and cosigns it.

    The job never raises for a refusal, so that a fork alarm commits with its 422 answer.
    """
    cp = sub.checkpoint

    def refuse(status: int, detail: str, alarm: Event | None = None) -> Answer:
        return Answer(status, detail.encode() + b"\n", "text/plain; charset=utf-8", alarm, detail)

    def job(conn: Connection) -> Answer:
        state = tlog.get_witness_state(conn, cp.origin)
        latest = 0 if state is None else int(state["size"])
        if sub.old != latest:
            return Answer(409, format_size_body(latest), SIZE_MEDIA_TYPE, detail=f"the cosigned size is {latest}")
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            return refuse(422, "a checkpoint of size 0 must have the empty root")
        if sub.old == 0:
            if sub.proof:
                return refuse(422, "a consistency proof from size 0 must be empty")
        else:
            assert state is not None  # old == latest > 0
            try:
                verify_consistency(sub.old, cp.size, bytes(state["root"]), cp.root, sub.proof)
            except VerificationError:
                reason = (
                    "same size, different root"
                    if sub.old == cp.size
                    else "the consistency proof from the cosigned checkpoint does not verify"
                )
                alarm = _fork_alarm(ctx, conn, sub, state, reason)
                return refuse(422, f"checkpoint is not consistent with what this node cosigned: {reason}", alarm)
        signature = cosign(sub.note.text, ctx.signer, max(1, int(time.time())))
        line = signature.line()
        tlog.set_witness_state(
            conn, cp.origin, sub.log_party, cp.size, cp.root, sub.note.format(), line.rstrip("\n"), format_time(now())
        )
        return Answer(200, line.encode(), "text/plain; charset=utf-8")

    return job
