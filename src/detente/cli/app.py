"""Node administration commands: init, agreement (ratify, show), serve, user (key, backup, restore: `safekeeping`)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console

from detente.cli.arguments import CheckedCommand, language_tag
from detente.cli.helptext import RootGroup
from detente.errors import BadRequest, Invalid
from detente.node import setup
from detente.node.config import load_config

# RootGroup: every command's help reflows to the terminal and names option values (`cli.helptext`).
app = typer.Typer(help="Détente: a verifiable hotline for states in crisis.", no_args_is_help=True, cls=RootGroup)
agreement_app = typer.Typer(help="The agreement in force: ratify, show.", no_args_is_help=True)
user_app = typer.Typer(help="Operators of this node.", no_args_is_help=True)
app.add_typer(agreement_app, name="agreement")
app.add_typer(user_app, name="user")
out = Console()

DataOpt = Annotated[Path, typer.Option("--data", help="the node's data directory")]
# An agreement ratified before unknown keys were refused still serves; each such key is named.
IGNORED_KEY = "the agreement in force holds a key no rule reads, so it has had no effect (amend it to correct it):"


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Invalid(f"--listen must be HOST:PORT, e.g. 127.0.0.1:8443, not {value!r}")
    return host, int(port)


@app.command()
def init(
    party: Annotated[str, typer.Option(help="this node's party id, e.g. pk")],
    agreement: Annotated[Path, typer.Option(help="the agreement TOML", exists=True, dir_okay=False)],
    data: DataOpt,
    listen: Annotated[str, typer.Option(help="HOST:PORT the node listens on")] = "127.0.0.1:8443",
    db: Annotated[str | None, typer.Option(help="database URL (default: SQLite in DIR)")] = None,
    url: Annotated[
        str | None,
        typer.Option(help="the https:// address peers reach this node at (default: that of --listen)"),
    ] = None,
) -> None:
    """Create a node: Ed25519 key, TLS certificate, database; print what the agreement needs."""
    host, port = _listen(listen)
    if url is not None:
        _public_url(url)
    result = setup.init_node(data, party, agreement, host, port, db)
    out.print(f"[bold]node {party}[/] created in {data}")
    out.print(f"Put these in the agreement under [parties.{party}]:", markup=False)
    print(f'url = "{url or result.config.url}"')
    print(f'vkey = "{result.vkey}"')
    print(f'tls_fingerprint = "{result.fingerprint}"')
    if url is None and host in ("0.0.0.0", "::"):
        print(
            f"note: {host} is where this node listens, not an address a peer can connect to: put in url the "
            "address peers reach it at (or make the node again with --url)",
            file=sys.stderr,
        )


def _public_url(url: str) -> None:
    """Refuse a --url peers could not use. Raises `Invalid`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise Invalid(f"--url must be https://HOST[:PORT], the address peers reach this node at, not {url!r}")
    if parts.hostname in ("0.0.0.0", "::") or port == 0:
        raise Invalid(f"--url must be an address peers can connect to, not {url!r}")


@agreement_app.command("ratify")
def agreement_ratify(
    data: DataOpt,
    agreement: Annotated[
        Path | None,
        typer.Option(help="install this (completed) agreement first", exists=True, dir_okay=False),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="replace the agreement in force by another (stop the node first)")
    ] = False,
) -> None:
    """Sign the agreement's hash with the node key (ratification).

    Replacing an agreement this node ratified by another one needs --replace and a stopped node;
    every peer must ratify the same agreement. It signs with the key the agreement pins for this
    node: if that is the next key (`detente key new`) or a retired one, it becomes node.key.
    """
    from detente.node.ratification import ratify

    done = ratify(data, agreement, replace=replace)
    doc = done.agreement
    # On stderr, like the client's warnings: stdout stays what was done.
    for warning in done.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"ratified agreement {doc.id} {doc.hash}")
    print(f"signature {done.signature}")
    if done.switched is not None:
        moved = done.switched
        print(f"node key switched: node.key is now {moved.vkey} (it was {moved.source.name})")
        print(f"the key it replaced, {moved.retired_vkey}, is kept in {moved.retired}")
    if done.again:
        print("this agreement was in force already: nothing else changed")
        return
    if done.replaced is not None:
        old = done.replaced[:12] + "…"
        print(f"replaced agreement {done.replaced}; start the node to serve under the new one")
        if done.queued:
            print(
                f"note: {done.queued} envelope(s) in the outbox were sealed under the replaced agreement; "
                "each peer accepts them once it has ratified the new one too, and checks each under the "
                "agreement it names"
            )
        if done.logged:  # a node that never served under the replaced agreement logged nothing under it
            print(f"an audit of this node's log now needs both agreements: --earlier with the one replaced ({old})")
    peers = ", ".join(p.id for p in doc.peers(done.party))
    print(f"every peer ({peers}) must ratify this same agreement: until it does, the nodes refuse each other")


@agreement_app.command("show")
def agreement_show(data: DataOpt) -> None:
    """Print the agreement in force: hash, ratification, the running node's agreement, parties, offices, channels."""
    from detente.node.ratification import status

    found = status(data)
    doc = found.agreement
    print(f"{doc.id}  {doc.hash}")
    for line in found.lines():
        print(line)
    for ignored in doc.ignored:
        print(f"warning: {IGNORED_KEY} {ignored}")
    for party in doc.parties.values():
        print(f"party {party.id}: {party.name}  {party.url or '(no url)'}  {party.vkey or '(no key)'}")
    for office in doc.offices.values():
        alt = f" (alternate {office.alternate})" if office.alternate else ""
        print(f"office {office.id}: {office.title}{alt}")
    for channel in doc.channels.values():
        print(f"channel {channel.name}: {channel.offices[0]} <-> {channel.offices[1]}")


@app.command()
def serve(data: DataOpt) -> None:
    """Run the node (HTTPS API, federation, console) until Ctrl-C.

    Everything that can stop it is checked before it says it serves: the configuration, key,
    agreement and ratification, the database, the TLS files, that no node serves from DATA yet,
    and that its address is free.
    """
    import gc
    import logging

    import uvicorn

    from detente.node.keyring import check_in_force
    from detente.node.runtime import Node
    from detente.node.serving import ServeLock, address_warnings, check_tls, listen
    from detente.web.app import create_app
    from detente.web.stack import UVICORN_OPTIONS, NodeServer

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # psycopg warns, over three lines, of a pipeline it could not end on a connection the server
    # dropped; the node says that the database went away in its own words (`store.db`).
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    node = Node.open(data)
    config = node.ctx.config
    held = contextlib.ExitStack()  # what a failure before uvicorn takes over must close again
    held.callback(node.close)
    with held:
        node.check_ready()
        check_in_force(config, node.ctx.agreement, node.ctx.signer)
        check_tls(config, node.ctx.agreement)
        lock = ServeLock(data, node.ctx.agreement)
        held.callback(lock.release)
        # Bound here, not by uvicorn, which would bind only after "serving on" was printed.
        sockets = listen(config.host, config.port)
        for sock in sockets:
            held.callback(sock.close)
        application = create_app(node)
        held.pop_all()  # from here on the node's lifespan closes the node
    server = NodeServer(
        uvicorn.Config(
            application,
            host=config.host,
            port=config.port,
            ssl_certfile=str(config.cert_path),
            ssl_keyfile=str(config.tls_key_path),
            **UVICORN_OPTIONS,
        )
    )
    server.hold_signals()  # from here a Ctrl-C stops the node, however early it comes
    for warning in address_warnings(config, node.ctx.agreement):
        print(f"warning: {warning}", flush=True)
    for ignored in node.ctx.agreement.ignored:
        print(f"warning: {IGNORED_KEY} {ignored}", flush=True)
    for agreement_hash in node.ctx.unkept:
        print(
            f"warning: agreement {agreement_hash[:12]}…, ratified by this node before, is not kept in "
            f"{config.kept_agreement_path(agreement_hash).parent}: an envelope a peer queued under it is refused. "
            "Put a copy of it there, named <hash>.toml",
            flush=True,
        )
    print(f"node {config.party} serving on {config.url}", flush=True)
    # Everything built so far (modules, the app, the agreement, SQLAlchemy's metadata) lives as
    # long as the process: move it out of the collector's reach. A full collection then scans only
    # what came later instead of stopping the node for 60-110 ms, the longest single pause a FLASH
    # message met (measured with gc.callbacks during the bench's latency run).
    gc.collect()
    gc.freeze()
    try:
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
        lock.release()
    # Said only once everything is closed and the lock let go: another `serve` may start now.
    print(f"node {config.party} stopped", flush=True)


def read_password() -> str:
    """Return the first line of standard input as the password.

    Raises `BadRequest` if it is not UTF-8: read as text, its odd bytes would become lone
    surrogates that fail only when the password is hashed.
    """
    stream = getattr(sys.stdin, "buffer", None)
    line = stream.readline() if stream is not None else sys.stdin.readline().encode("utf-8", "surrogateescape")
    try:
        text: str = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the password on standard input is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


@user_app.command("add", cls=CheckedCommand)
def user_add(
    data: DataOpt,
    name: Annotated[str, typer.Option(help="login name")],
    office: Annotated[list[str], typer.Option(help="office id, repeatable")],
    role: Annotated[list[str], typer.Option(help="operator|supervisor|translator|auditor|admin, repeatable")],
    lang: Annotated[
        str,
        typer.Option(
            help="their language, one of the agreement's (in any case): their texts', and the console's "
            "(English pages if it has none in it)"
        ),
    ] = "en",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the console password")] = False,
) -> None:
    """Create an operator and print their API token (shown once).

    Repeated --office and --role count once. A name differing only in letter case from an existing
    operator's is refused, as is a language the agreement does not list. A language the agreement
    lists but the console has no pages in is taken, with a `warning:` line (`console_language_warning`).
    """
    lang = language_tag(lang, lambda: load_config(data).agreement().languages)
    password = read_password() if password_stdin else None
    op = setup.add_user(data, name, office, role, password, lang)
    print(f"operator {op.name} ({', '.join(op.roles)}) for {', '.join(op.offices)}")
    print(f"token {op.token}")
    warning = console_language_warning(op.name, lang)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def console_language_warning(name: str, lang: str) -> str:
    """Return what an operator whose language the console has no pages in should know, else "".

    The command line and the agreement's texts use the language; the console shows its pages in
    English and only the codebook texts in it (`web.console.i18n.text_language`). Raises nothing.
    """
    # Imported here: the console's package loads the web stack, which `user add` needs for this only.
    from detente.web.console.i18n import LANGUAGES

    if lang in LANGUAGES:
        return ""
    return (
        f"the console has no pages in {lang!r} (only in {', '.join(LANGUAGES)}): its pages will be in English "
        f"for {name}, while codebook texts and messages are shown in {lang!r} where the agreement has them, "
        "in the console and on the command line"
    )


@user_app.command("disable")
def user_disable(data: DataOpt, name: Annotated[str, typer.Option(help="login name")]) -> None:
    """Disable an operator: their API token and console login stop working (within 2 s on a running node)."""
    setup.set_user_enabled(data, name, enabled=False)
    print(f"operator {name} disabled")


@user_app.command("enable")
def user_enable(data: DataOpt, name: Annotated[str, typer.Option(help="login name")]) -> None:
    """Enable a disabled operator again."""
    setup.set_user_enabled(data, name, enabled=True)
    print(f"operator {name} enabled")


@user_app.command("passwd", cls=CheckedCommand)
def user_passwd(
    data: DataOpt,
    name: Annotated[str, typer.Option(help="login name")],
    # Required: the password is read from standard input only, never from the command line (which
    # other users of the machine can read); without the flag the command is mistyped, a usage error.
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the new console password (first line of stdin)")
    ],
) -> None:
    """Set an operator's console password; their open console sessions end (within 2 s on a running node)."""
    setup.set_password(data, name, read_password())
    print(f"operator {name}: password changed; their console sessions have ended")


@user_app.command("token")
def user_token(data: DataOpt, name: Annotated[str, typer.Option(help="login name")]) -> None:
    """Give an operator a new API token (printed once); the old token stops working."""
    print(f"token {setup.rotate_token(data, name)}")


@user_app.command("list")
def user_list(data: DataOpt) -> None:
    """List the node's operators."""
    print(setup.operators_json(data))


from detente.cli import client as _client  # noqa: E402,F401  (registers the API commands)
from detente.cli import demo as _demo  # noqa: E402,F401  (registers `demo`)
from detente.cli import drill as _drill  # noqa: E402,F401  (registers `drill`)
from detente.cli import inbox as _inbox  # noqa: E402,F401  (registers `inbox`)
from detente.cli import log as _log  # noqa: E402,F401  (registers `log` and `audit`)
from detente.cli import safekeeping as _safekeeping  # noqa: E402,F401  (registers `key`, `backup`, `restore`)
from detente.cli import translations as _translations  # noqa: E402,F401  (registers `translate`, `review`)
from detente.cli import workflow as _workflow  # noqa: E402,F401  (code, codebook, case, action, ..., rebuild)
from detente.cli import workflow_lists as _workflow_lists  # noqa: E402,F401  (case, action, ... list|show)

__all__ = ["app", "json"]
