"""Is a drill report what its facts give? Recompute everything it derives and compare.

A report stores values it derived at run time beside the facts they come from: each envelope's
drill time (its `created` time through the clock table), whether it needed an answer (the node's
deadline), the scripted step it answers to, and the whole `figures` block. `drill report` and
`drill compare` recompute the figures from the facts, but a reader of the JSON or of an old HTML
page sees the stored values, so a report whose stored values disagree with its facts is refused
rather than silently corrected: `problem(data)` names the first such value and both readings.

Facts that cannot be recomputed are cross-checked where they meet: the clock table must start
where the run started and never run backwards; an answer recorded on a message must be the
envelope that answers it (same type, same `created` time, referring to it); the checkpoints a
node signed, when the report carries them, must be well-formed notes of the size they state, above
every log index the run's envelopes have on that node, and signed: by the node's log key and
cosigned by every other node's witness key, both as the report's `keys` give them (C2SP vkeys,
`party_keys`). What no report can prove by itself (that its envelopes are the nodes' envelopes,
that its keys are the agreement's) is checked against the nodes' logs by their ids and log
indexes, and against the agreement by `detente audit`. Pure.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from detente.core import keys
from detente.core.agreement import Agreement
from detente.core.checkpoint import open_checkpoint, parse_checkpoint
from detente.core.drill_clock import to_drill
from detente.core.note import Note, parse_note
from detente.core.precedence import format_time, parse_time
from detente.errors import Error, MalformedError

EDITED = "the report was edited"
NO_KEY = "no key to verify it with"


def problem(data: dict[str, Any]) -> str | None:
    """Return the first stored value of a report (checked for shape) that its facts contradict, or None."""
    samples = [(parse_time(w), parse_time(d)) for w, d in data["clock"]["samples"]]
    return (
        _clock(data, samples)
        or _envelopes(data, samples)
        or _checkpoints(data)
        or _figures(data)
    )  # fmt: skip


def _clock(data: dict[str, Any], samples: list[tuple[datetime, datetime]]) -> str | None:
    run = data["run"]
    if not samples:
        return "clock.samples: empty: without the clock table no drill time can be checked"
    first_wall, first_drill = samples[0]
    if format_time(first_wall) != run["wall_start"] or format_time(first_drill) != run["drill_start"]:
        return (
            f"clock.samples[0]: the clock table starts at {format_time(first_wall)} → {format_time(first_drill)}, "
            f"but the run at {run['wall_start']} → {run['drill_start']}; {EDITED}"
        )
    for index, ((w1, d1), (w2, d2)) in enumerate(zip(samples, samples[1:], strict=False), 1):
        if w2 < w1 or d2 < d1:
            return f"clock.samples[{index}]: the clock runs backwards from clock.samples[{index - 1}]; {EDITED}"
    if samples[-1][0] > parse_time(run["wall_end"]):
        return f"clock.samples[{len(samples) - 1}]: after the end of the run ({run['wall_end']}); {EDITED}"
    return None


def _envelopes(data: dict[str, Any], samples: list[tuple[datetime, datetime]]) -> str | None:
    by_id = {e["id"]: e for e in data["envelopes"]}
    steps = {s["id"]: s for s in data["steps"] if s.get("id")}
    for envelope in data["envelopes"]:
        name = f"envelope {envelope['id']} ({envelope['type']})"
        drill = format_time(to_drill(samples, parse_time(envelope["created"])))
        if envelope["drill"] != drill:
            return (
                f"{name}: its drill time is {envelope['drill']}, but its created time {envelope['created']} "
                f"converts to {drill} with the clock table; {EDITED}"
            )
        if "deadline" in envelope and "needs_ack" in envelope:
            needs = envelope["deadline"] is not None
            if envelope["needs_ack"] is not needs:
                deadline = envelope["deadline"]
                return f"{name}: needs_ack is {envelope['needs_ack']}, but its deadline is {deadline}; {EDITED}"
        step = steps.get(envelope["id"])
        for key, value in (("line", step and step.get("line")), ("step", step and step.get("label"))):
            if key in envelope and envelope[key] != value and step is not None:
                return f"{name}: {key} is {envelope[key]!r}, but its step says {value!r}; {EDITED}"
        response = envelope.get("response")
        answer = by_id.get(response["id"]) if response else None
        if response and answer is not None:
            refs = answer.get("refs") or []
            if answer["type"] != response["type"] or answer["created"] != response["at"] or envelope["id"] not in refs:
                return (
                    f"{name}: its answer is recorded as {response['type']} {response['id']} at {response['at']}, "
                    f"but that envelope is a {answer['type']} created {answer['created']} "
                    f"referring to {', '.join(refs) or 'nothing'}; {EDITED}"
                )
    return None


def _checkpoints(data: dict[str, Any]) -> str | None:
    for party, entry in (data.get("checkpoints") or {}).items():
        where = f"checkpoints.{party}"
        try:
            note = parse_note(entry["note"].encode("utf-8"))
            size = parse_checkpoint(note.text).size
        except Error as exc:
            return f"{where}.note: not a signed checkpoint: {exc.detail}"
        if size != entry["size"]:
            return f"{where}: size is {entry['size']}, but its note says {size}; {EDITED}"
        unsigned = signature_problem(party, note, data.get("keys") or {}, list(data["run"]["nodes"]))
        if unsigned is not None:
            # A missing key says itself why; any other failure means the checkpoint or a key changed.
            return f"{where}: {unsigned}" + ("" if unsigned.startswith(NO_KEY) else f"; {EDITED}")
        # The report says an export and audit of the node prove every index below the size: so
        # every envelope of the run must lie below it in that node's log.
        for envelope in data["envelopes"]:
            index = envelope["log"].get(party)
            if index is not None and index >= size:
                return (
                    f"envelope {envelope['id']} ({envelope['type']}): its {party} log index is {index}, "
                    f"but {where} covers only the indexes below {size}; {EDITED}"
                )
    return None


def party_keys(agreement: Agreement) -> dict[str, dict[str, str]]:
    """Return each party's keys as a report's `keys` holds them: {party: {log, witness}}, C2SP vkeys.

    `log` is the node key that signs its checkpoints (Ed25519 note key, type 0x01); `witness` the
    same key as a cosignature/v1 key (type 0x04), with which the node cosigns its peers'
    checkpoints (a node signs both with one key, `core.keys`). A party the agreement pins no key
    for yet is left out. Raises nothing.
    """
    out: dict[str, dict[str, str]] = {}
    for party, entry in agreement.parties.items():
        if entry.vkey:
            log = keys.parse_vkey(entry.vkey)
            out[party] = {"log": log.vkey(), "witness": log.with_alg(keys.ALG_COSIGNATURE_V1).vkey()}
    return out


def signature_problem(party: str, note: Note, table: dict[str, Any], parties: list[str]) -> str | None:
    """Return why `party`'s checkpoint `note` is not signed as a run's checkpoint must be, or None.

    It must carry a valid signature of `party`'s log key and a valid cosignature of the witness key
    of every other party of `parties`, each key read from `table` (a report's `keys`). A missing
    key is a problem too (starting `NO_KEY`): removing the keys must not make an edited checkpoint
    pass. Raises nothing.
    """
    log_key = _key(table, party, "log", keys.ALG_ED25519)
    if isinstance(log_key, str):
        return log_key
    witnesses: dict[str, keys.Verifier] = {}
    for peer in parties:
        if peer != party:
            found = _key(table, peer, "witness", keys.ALG_COSIGNATURE_V1)
            if isinstance(found, str):
                return found
            witnesses[peer] = found
    try:
        _, _, cosigned = open_checkpoint(note, log_key, list(witnesses.values()))
    except (Error, ValueError) as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        return f"its signatures do not verify with keys.{party}.log and the witness keys: {detail}"
    missing = sorted(peer for peer, key in witnesses.items() if key.name not in cosigned)
    if missing:
        named = ", ".join(f"{peer} (keys.{peer}.witness)" for peer in missing)
        return f"it is not cosigned by {named}, and a run keeps only checkpoints every peer cosigned"
    return None


def _key(table: dict[str, Any], party: str, role: str, alg: int) -> keys.Verifier | str:
    """The verifier `table[party][role]` names, or why there is none to check a checkpoint with."""
    value = (table.get(party) or {}).get(role)
    if value is None:
        return (
            f"{NO_KEY}: keys.{party}.{role} is missing (the report was edited, or written before reports "
            "carried their nodes' keys: run the drill again)"
        )
    try:
        verifier = keys.parse_vkey(value)
    except MalformedError as exc:
        return f"keys.{party}.{role} is not a verifier key (vkey): {exc.detail}"
    if verifier.alg != alg:
        kind = "a note signature key (type 0x01)" if alg == keys.ALG_ED25519 else "a cosignature/v1 key (type 0x04)"
        return f"keys.{party}.{role} must be {kind}, not type {verifier.alg:#04x}"
    return verifier


def _figures(data: dict[str, Any]) -> str | None:
    stored = data.get("figures")
    if not isinstance(stored, dict):
        return None  # facts alone: nothing stored to contradict
    # Imported here: `drill_report` does not need this module, and this one needs it only here.
    from detente.core.drill_report import compute

    fresh = compute({k: v for k, v in data.items() if k != "figures"})["figures"]
    return _differs(stored, fresh, "figures")


def _differs(stored: Any, fresh: Any, path: str) -> str | None:
    """Return where `stored` says something `fresh` does not, comparing only what both hold."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        # Keys only one side holds are left alone: a report from another version names other figures.
        for key in stored.keys() & fresh.keys():
            found = _differs(stored[key], fresh[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return f"{path}: the report lists {len(stored)}, its facts give {len(fresh)}; {EDITED}"
        for index, (left, right) in enumerate(zip(stored, fresh, strict=True)):
            found = _differs(left, right, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if _same(stored, fresh):
        return None
    return f"{path}: the report says {stored!r}, its facts give {fresh!r}; {EDITED}"


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)
