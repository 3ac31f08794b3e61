"""The node's keys and its copies: `key new`, `key show` (a key rotation), `backup` and `restore`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detente.cli.app import DataOpt, app

key_app = typer.Typer(help="The node key and its rotation: new, show.", no_args_is_help=True)
app.add_typer(key_app, name="key")


@key_app.command("new")
def key_new(
    data: DataOpt,
    replace: Annotated[
        bool, typer.Option("--replace", help="make another next key in place of the one made before")
    ] = False,
) -> None:
    """Make the next node key (DATA/node.key.next) for a key rotation and print its vkey.

    Changes nothing the node uses, so it may run meanwhile. The key switches when this node
    ratifies an amended agreement that pins it (`detente agreement ratify ... --replace`).
    """
    from detente.node.config import load_config
    from detente.node.keyring import new_key

    made = new_key(data, replace=replace)
    party = load_config(data).party
    print(
        f"next node key written to {made.key.path}; node.key stays in force until this node ratifies an agreement "
        "that pins the new key"
    )
    if made.replaced is not None:
        print(f"it replaces the next key made before, {made.replaced}")
    print(f"Put it in the amended agreement under [parties.{party}]:")
    print(f'vkey = "{made.key.vkey}"')
    print("then every party ratifies the amended agreement, each node stopped; this node switches to the new key")
    print(f"when it ratifies it: detente agreement ratify --data {data} --agreement NEW.toml --replace")


@key_app.command("show")
def key_show(data: DataOpt) -> None:
    """Print the node key in force, whether the agreement pins it, the next key and the retired keys."""
    from detente.node.keyring import status

    for line in status(data).lines():
        print(line)


@app.command()
def backup(
    data: DataOpt,
    to: Annotated[Path, typer.Option("--out", help="a new or empty directory for the copy")],
) -> None:
    """Copy the node's files, evidence and SQLite database, consistently, while it runs (or not).

    Each evidence file is checked against its SHA-256. A file the database lists as stored that
    is missing or damaged on the node is named, and the command exits 1, with the copy written:
    a restore refuses it unless the loss is accepted. A copy restores the node exactly only if
    the node did nothing after it was taken: the peers hold what it did since (see README, "Backups").
    """
    from detente.errors import Invalid
    from detente.node.backup import backup as take
    from detente.node.serving import running

    done = take(data, to)
    print(f"backed up {data} to {done.out} at {done.taken}: {len(done.files)} files")
    if done.database is not None:
        print(f"database     {done.database}, a consistent copy; the log holds {done.log_size} entries")
    else:
        print(
            f"database     not copied: {done.database_url} is PostgreSQL; back it up with the server's own "
            "tools (pg_dump), just before this command, so that every evidence file the dump lists is in this copy"
        )
    copied = f"evidence     {_files(done.evidence)}, SHA-256 checked"
    if done.checked is not None:
        print(f"{copied}; not checked against the database: {done.checked}")
    elif not done.lost:
        print(f"{copied}; every file the database lists as stored is in the copy")
    else:
        print(f"{copied}; not in the copy, though the database lists them as stored:")
    for sha256, why in done.lost.items():
        print(f"lost         {sha256}: {why}")
    print("a restore is exact only if the node does nothing after this copy: the peers hold what comes after it")
    if running(data) is not None:
        print(
            "the node is serving: its link tests, checkpoints and cosignatures go into its log every few seconds, "
            "so this copy is behind within seconds; for a copy to restore exactly, stop the node and take it again"
        )
    if done.lost and done.database is None:
        raise Invalid(
            f"{done.out} is written but lacks {_files(len(done.lost))} of evidence the database lists as stored (named "
            "above); a node restored from it marks them missing when it starts and fetches each again from a peer "
            "that holds it (one no peer has is to be uploaded again)"
        )
    if done.lost:
        raise Invalid(
            f"{done.out} is written but lacks {_files(len(done.lost))} of evidence the database lists as stored (named "
            "above); a restore refuses it unless --accept-lost-evidence, which marks them missing to fetch again"
        )


@app.command()
def restore(
    data: DataOpt,
    source: Annotated[Path, typer.Option("--from", help="the directory `detente backup` wrote")],
    accept_lost_evidence: Annotated[
        bool,
        typer.Option(
            "--accept-lost-evidence",
            help="restore even if evidence files the database lists as stored are in neither the backup nor the "
            "directory (an earlier release's backup holds none): they are marked missing, fetched again from a peer "
            "(SQLite; a PostgreSQL node marks them itself when it starts)",
        ),
    ] = False,
) -> None:
    """Put a backup of this node back into its data directory (or a new one), with the node stopped.

    Everything is checked first: the backup is complete and of this node, its database passes
    SQLite's integrity check, and every evidence file that database lists as stored is in the
    backup or the directory with its SHA-256 right; otherwise it refuses, naming the files,
    unless --accept-lost-evidence. The old database's -wal and -shm are removed, so that SQLite
    cannot apply them to the restored file. A PostgreSQL database is left alone: restore it with
    the server's own tools; the node marks the files it lists but lacks as missing when it starts.
    Exact only if the node did nothing after the copy (see README, "Backups").
    """
    from detente.node.restore import restore as put_back

    done = put_back(data, source, accept_lost_evidence=accept_lost_evidence)
    print(f"restored {done.data} from {done.source}: {', '.join(done.files)}")
    if done.database is not None:
        print(f"database     {done.database}, integrity checked; the log holds {done.log_size} entries")
        if done.removed:
            print(f"removed      {', '.join(done.removed)}: the old database's, which SQLite would have applied to it")
    else:
        print(
            f"database     not restored: {done.database_url} is PostgreSQL; restore it with the server's own tools "
            "(pg_restore or psql, from the dump taken with this backup) before starting the node"
        )
    already = done.evidence - done.put_back
    held = f"evidence     {_files(done.evidence)} here, each SHA-256 checked: {done.put_back} put back from the backup"
    held += f", {already} here already"
    if not done.backup_evidence:
        print("evidence     the backup has no evidence/ (taken by an earlier release): no file put back from it")
    if done.database is None:
        print(
            f"{held}; the list of those the database holds is in the dump, which restore does not read: when the "
            "node starts, it marks each file that list names as stored but this directory lacks as missing, and "
            "fetches it again from a peer that holds it"
        )
        if accept_lost_evidence:
            print(
                "note         --accept-lost-evidence cannot mark a PostgreSQL database: the node marks what it lacks "
                "itself when it starts"
            )
    elif not done.lost:
        print(f"{held}; every file the database lists as stored is here")
    else:
        print(f"{held}; lost, though the database lists them as stored (--accept-lost-evidence):")
    for sha256, what in done.lost.items():
        print(f"lost         {sha256}: {what}")
    for sha256 in done.damaged:
        print(f"damaged      {sha256} in the backup: not put back (the database does not list it as stored)")
    if done.kept:
        print(f"kept         {', '.join(done.kept)}: this node's keys that the backup holds no copy of")
    print(
        "a restore is exact only if the node did nothing after the copy was taken: the peers hold what came after "
        'it, and refuse the reused sequence numbers and the forked log (see README, "Backups")'
    )


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"
