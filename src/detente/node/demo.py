"""Preparing the demo: a node per party on loopback, Pakistan and Iran under `agreements/pk-ir.toml`.

Any agreement may be given instead (`detente demo --agreement`): the demo makes one node per party
of it, so `agreements/pk-ir-af.toml` gives three (Pakistan, Iran, Afghanistan).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from detente.core import agreement as agreement_mod
from detente.errors import Conflict, Invalid
from detente.node.ratification import ratify
from detente.node.setup import add_user, init_node

DEMO_PARTIES = ("pk", "ir")
PARTY_NAME = re.compile(r"^[a-z]{2,8}$")
DEMO_LINK_TEST_SECONDS = 5
DEMO_MARKER = ".detente-demo"
# Every name a demo writes directly in its workdir, and whether it is a directory: `setup_demo`
# writes the marker, the node directories, agreement.toml and demo.json; `detente demo` adds the
# drill's agreement-template.toml, one log per node and drill-reports/. Starting a demo again removes
# these and nothing else, so that a file of the user's in the workdir always survives.
DEMO_ENTRIES: dict[str, bool] = {
    DEMO_MARKER: False,
    "demo.json": False,
    "agreement.toml": False,
    "agreement-template.toml": False,
    "drill-reports": True,
    **{party: True for party in DEMO_PARTIES},
    **{f"{party}.log": False for party in DEMO_PARTIES},
}
_MARKER_TEXT = (
    "This directory holds a demo made by `detente demo`. Starting a demo here again removes only the\n"
    "entries the demo makes: " + ", ".join(sorted(DEMO_ENTRIES)) + ", and a directory and a log per party of\n"
    "a demo of other parties (af, af.log).\n"
)


def _shown(path: Path | str) -> str:
    # "." or ".." alone would not tell the reader which directory was meant; a name with control
    # characters (any file in the directory may be named) is quoted so that it cannot drive the terminal.
    text = os.path.abspath(path) if Path(path).name in ("", ".", "..") else str(path)
    return text if text.isprintable() else repr(text)


def demo_entries(workdir: Path, parties: Iterable[str] = DEMO_PARTIES) -> dict[str, bool]:
    """Return every name a demo of `parties` writes in `workdir`, and whether it is a directory.

    Besides `DEMO_ENTRIES`: a directory and a log per party of `parties` and of the demo that
    `workdir` holds already (its demo.json), so that a demo of another group of parties replaces
    that one's nodes, and nothing else. Only names that are party ids count (`[a-z]{2,8}`).
    """
    earlier = (read_demo_info(workdir) or {}).get("nodes", {})
    entries = dict(DEMO_ENTRIES)
    for party in [*parties, *earlier]:
        if isinstance(party, str) and PARTY_NAME.match(party):
            entries[party] = True
            entries[f"{party}.log"] = False
    return entries


def read_demo_info(workdir: Path) -> dict[str, Any] | None:
    """Return the demo.json an earlier demo wrote in `workdir`, or None if there is none that reads as one."""
    try:
        info = json.loads((workdir / "demo.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(info, dict) and isinstance(info.get("nodes"), dict) and "agreement" in info:
        return info
    return None


def check_workdir(workdir: Path, parties: Iterable[str] = DEMO_PARTIES) -> bool:
    """Check, without changing anything, that a demo may use `workdir`; return whether it holds one.

    A demo may use a directory that does not exist, an empty one, or one an earlier demo made (it
    holds the demo's marker or its demo.json). Raises `Invalid` if `workdir` is not a directory or
    cannot be read, and `Conflict` if it holds something other than a demo, or an entry named as a
    demo's but of another kind (a symbolic link, a file for a directory), which a demo never makes.
    """
    if not workdir.exists() and not workdir.is_symlink():
        return False
    if not workdir.is_dir():
        kind = "a file" if workdir.is_file() else "not a directory"
        raise Invalid(f"{_shown(workdir)} is {kind}: choose a directory as --workdir")
    try:
        names = sorted(entry.name for entry in workdir.iterdir())
    except OSError as exc:
        raise Invalid(f"cannot read {_shown(workdir)} ({exc.strerror}): choose another --workdir") from exc
    if not names:
        return False
    marker = workdir / DEMO_MARKER
    if not (marker.is_file() and not marker.is_symlink()) and read_demo_info(workdir) is None:
        others = ", ".join(map(_shown, names[:3])) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise Conflict(
            f"{_shown(workdir)} is not empty and holds no demo (it holds {others}): "
            "choose another --workdir or empty it"
        )
    entries = demo_entries(workdir, parties)
    for name in names:
        if name not in entries:
            continue
        entry = workdir / name
        if entry.is_symlink() or entry.is_dir() != entries[name]:
            found = "a symbolic link" if entry.is_symlink() else "a directory" if entry.is_dir() else "a file"
            wanted = "directory" if entries[name] else "file"
            raise Conflict(
                f"{_shown(entry)} is {found}, not the {wanted} a demo makes there: "
                "move it away or choose another --workdir"
            )
    return True


def clear_workdir(workdir: Path, *, keep: bool = False, parties: Iterable[str] = DEMO_PARTIES) -> dict[str, Any] | None:
    """Make `workdir` ready for a new demo of `parties`, removing only the entries an earlier demo made there.

    With `keep`, an earlier demo whose demo.json still reads is kept as it is and its demo.json is
    returned; otherwise None. Any other file in `workdir` is left alone. Raises what
    `check_workdir` raises, before anything is changed, and `Invalid` if `workdir` cannot be
    created or an entry cannot be removed.
    """
    parties = tuple(parties)
    if check_workdir(workdir, parties) and keep and (info := read_demo_info(workdir)) is not None:
        return info
    entries = demo_entries(workdir, parties)  # before anything is removed: it reads the earlier demo.json
    try:
        mark_workdir(workdir)
        for name, is_dir in entries.items():
            entry = workdir / name
            if name == DEMO_MARKER or not entry.exists():
                continue
            if is_dir:
                shutil.rmtree(entry)
            else:
                entry.unlink()
    except OSError as exc:
        raise Invalid(
            f"cannot prepare {_shown(workdir)} for the demo ({exc.strerror}): choose another --workdir"
        ) from exc
    return None


def mark_workdir(workdir: Path) -> None:
    """Create `workdir` if needed and write the marker that shows a demo made it.

    The marker comes first, so that a directory whose setup was interrupted is still recognised
    (and cleared) by the next demo. Raises `OSError` if `workdir` cannot be created or written.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / DEMO_MARKER).write_text(_MARKER_TEXT, encoding="utf-8")


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fill_agreement(text: str, values: dict[str, dict[str, str]], link_test_seconds: float | None) -> str:
    """Fill each party's url, vkey and tls_fingerprint into an agreement's TOML text, keeping comments."""
    out: list[str] = []
    section = ""
    for line in text.splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            section = header.group(1).strip()
        party = section[len("parties.") :] if section.startswith("parties.") else None
        key = re.match(r"^\s*(url|vkey|tls_fingerprint)\s*=", line)
        if party in values and key:
            line = f'{key.group(1)} = "{values[party][key.group(1)]}"'
        if section == "agreement" and link_test_seconds and re.match(r"^\s*link_test_seconds\s*=", line):
            line = f"link_test_seconds = {link_test_seconds:g}"
        out.append(line)
    return "\n".join(out) + "\n"


# The console language of the demo's translators: each side reads the other's messages in its own.
# Afghanistan's officials write Dari, which is written Persian: its translators read `fa`.
TRANSLATOR_LANGS = {"pk": "ur", "ir": "fa", "af": "fa"}


def setup_demo(
    workdir: Path,
    agreement_file: Path,
    ports: dict[str, int] | None = None,
    *,
    db_urls: dict[str, str] | None = None,
    link_test_seconds: float = DEMO_LINK_TEST_SECONDS,
    parties: tuple[str, ...] = DEMO_PARTIES,
) -> dict[str, Any]:
    """Create the demo's nodes (one per party of `parties`, every party of the agreement), the
    completed and ratified agreement, and one operator per office.

    Writes and returns `workdir/demo.json`; writes into `workdir` as it is (`clear_workdir` makes a
    used one ready first). Raises `Conflict` if `workdir` already holds a node.
    """
    mark_workdir(workdir)
    ports = ports or {}
    chosen: dict[str, int] = {}
    for party in parties:
        port = ports.get(party) or free_port()
        while port in chosen.values():
            port = free_port()
        chosen[party] = port
    results = {
        party: init_node(workdir / party, party, agreement_file, "127.0.0.1", chosen[party], (db_urls or {}).get(party))
        for party in parties
    }
    values = {
        party: {"url": r.config.url, "vkey": r.vkey, "tls_fingerprint": r.fingerprint} for party, r in results.items()
    }
    completed = fill_agreement(agreement_file.read_text(encoding="utf-8"), values, link_test_seconds)
    agreement_path = workdir / "agreement.toml"
    agreement_path.write_text(completed, encoding="utf-8")
    doc = agreement_mod.load(completed)
    for party in parties:
        ratify(workdir / party, agreement_path)
    nodes: dict[str, Any] = {}
    for party in parties:
        data = workdir / party
        operators = []
        offices = sorted(o for o, office in doc.offices.items() if office.party == party)
        accounts = [(o.replace(":", "-"), [o], ["operator"]) for o in offices]
        accounts.append((f"{party}-supervisor", offices, ["supervisor", "auditor"]))
        accounts.append((f"{party}-admin", offices, ["admin", "auditor"]))
        # Two translators, so that one certifies what the other translates (the two-person rule).
        accounts += [(f"{party}-translator{n}", offices, ["translator"]) for n in (1, 2)]
        for name, account_offices, roles in accounts:
            password = f"{name}-demo"
            lang = TRANSLATOR_LANGS.get(party, "en") if roles == ["translator"] else "en"
            lang = lang if lang in doc.languages else "en"  # an agreement of other languages
            op = add_user(data, name, account_offices, roles, password, lang=lang)
            operators.append(
                {
                    "name": name,
                    "offices": account_offices,
                    "roles": roles,
                    "token": op.token,
                    "password": password,
                }
            )
        nodes[party] = {
            "party": party,
            "data": str(data),
            "url": results[party].config.url,
            "api": results[party].config.url + "/api/v1",
            "console": results[party].config.url + "/",
            "cert": str(results[party].config.cert_path),
            "vkey": results[party].vkey,
            "tls_fingerprint": results[party].fingerprint,
            "operators": operators,
        }
    info = {"agreement": str(agreement_path), "agreement_hash": doc.hash, "nodes": nodes}
    (workdir / "demo.json").write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    return info
