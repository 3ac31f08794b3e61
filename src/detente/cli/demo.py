"""`detente demo`: two nodes, Pakistan and Iran, on loopback, with a live feed of the link.

With `--agreement` of a group of states (`agreements/pk-ir-af.toml`), one node per party of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from detente.cli.app import app
from detente.cli.drill_output import party_colour
from detente.core import agreement as agreement_mod
from detente.errors import Error, Unavailable
from detente.node.demo import DEMO_PARTIES, clear_workdir, setup_demo
from detente.node.drill_types import speed_problem
from detente.node.tls import trust_exactly

out = Console(highlight=False, soft_wrap=True)
DEFAULT_AGREEMENT = Path(__file__).resolve().parents[3] / "agreements" / "pk-ir.toml"


def wait_until_up(node: dict[str, Any], timeout: float = 30.0) -> None:
    """Wait for a node's API to answer. Raises `Unavailable` after `timeout` seconds."""
    context = trust_exactly(Path(node["cert"]).read_text())
    token = node["operators"][0]["token"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                node["api"] + "/me", verify=context, headers={"Authorization": f"Bearer {token}"}, timeout=2
            )
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise Unavailable(f"node {node['party']} did not start within {timeout:.0f} s")


def start_node(data: str, log_path: Path) -> subprocess.Popen[bytes]:
    """Start `detente serve --data DATA` as a child process writing to `log_path`."""
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "detente", "serve", "--data", data], stdout=log, stderr=subprocess.STDOUT
    )


def describe(party: str, event: dict[str, Any]) -> str | None:
    """Return one feed line for a stream event, or None for events not worth a line."""
    kind = event.get("event")
    short = (event.get("id") or "")[-8:]
    if kind == "hello":
        return None
    if kind == "message":
        text = f': "{event["rendered"]["en"]}"' if event.get("rendered") else ""
        return f"received {event['precedence']} {event['type']} {event['from']} → {event['to']} …{short}{text}"
    if kind == "sent":
        return f"sent {event['precedence']} {event['type']} to {event['to']} …{short}"
    if kind == "receipt":
        return f"receipt from {event['peer']} for …{short} (their log #{event['log_index']})"
    if kind in ("acknowledged", "declined"):
        return f"{kind} …{short} by {event.get('by')}" + (f": {event['note']}" if event.get("note") else "")
    if kind == "overdue":
        return describe_overdue(event, short)
    if kind == "link":
        return f"link to {event['peer']} is {event['state']} ({event.get('reason')})"
    if kind == "status":
        return f"status from {event['peer']}: {event['code']} {event.get('note', '')}"
    if kind in ("case", "action", "consultation", "clarification", "conflict", "evidence"):
        return describe_workflow(kind, event, short)
    return f"{kind} …{short}"


def describe_overdue(event: dict[str, Any], short: str) -> str:
    """Return the feed line of an overdue event, as what it is on this node.

    The event's offices are this node's office of the message and that office's alternates. For a
    message this node received (`direction` "in"), those alternates are alerted here. For one it
    sent ("out"), the office that has not answered is the peer's: its alternates are alerted on the
    peer's node, and none of ours. A peer's overdue notice (`reported_by`) names no direction: the
    line says only who reported it.
    """
    offices = [str(o) for o in event.get("offices") or []]
    ours, alternates = (offices[0] if offices else "?"), ", ".join(offices[1:]) or "none"
    if event.get("direction") == "out":
        return (
            f"OVERDUE …{short}: sent by {ours}, not answered by the deadline; "
            "the addressee's alternates are alerted on the peer's node"
        )
    if event.get("direction") == "in":
        return f"OVERDUE …{short}: {ours} has not answered by the deadline; alternates {alternates} alerted"
    if event.get("reported_by"):
        return f"OVERDUE …{short}: {event['reported_by']}'s node reports the deadline passed unanswered"
    return f"OVERDUE …{short}"


def describe_workflow(kind: str, event: dict[str, Any], short: str) -> str | None:
    """Return the feed line of a workflow event (cases, actions, consultations, evidence), or None."""
    if kind == "conflict":
        target = event["target"][-8:]
        return f"CONFLICT {event['type']} …{short} refused by {event['workflow']} …{target}: {event['reason']}"
    if kind == "evidence":
        if event.get("state") == "missing":
            return f"evidence {event['sha256'][:12]}… referenced; fetching it from {event['peer']}"
        return f"evidence {event['sha256'][:12]}… fetched from {event['peer']}, SHA-256 checked ({event['size']} bytes)"
    status, previous, step = event["status"], event.get("previous"), event["type"]
    move = f"{previous} → {status}" if previous else f"opened ({status})"
    if kind == "case":
        levels = ", ".join(f"{p} {v if v is not None else '-'}" for p, v in sorted(event["escalation"].items()))
        if not event.get("changed") and step != "case.update":
            return None
        return f"CASE …{short} {move}: {event['title']} (escalation {levels}) by {step}"
    if kind == "action":
        flag = f" UNILATERAL: {event['unilateral_reason']}" if event.get("unilateral") and status == "executed" else ""
        return f"ACTION …{short} {move} by {step} from {event['from']} ({event['target_group']}){flag}"
    if kind == "consultation":
        if not event.get("changed") and step not in ("consultation.cosign", "consultation.item_done"):
            return None
        signed = f" co-signed by {', '.join(event['cosigned_by'])}" if event.get("cosigned_by") else ""
        return f"CONSULTATION …{short} {move} by {step}: {event['title']}{signed}"
    return f"clarification …{short} {move}" + (" (late)" if event.get("late") else "")


async def feed(info: dict[str, Any], stop: asyncio.Event) -> None:
    """Print every node's stream (as its supervisor) until `stop` is set."""
    import websockets

    def show(party: str, line: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        out.print(f"{stamp}Z [{party_colour(party)}]{party}[/] {line}")

    async def follow(party: str, node: dict[str, Any]) -> None:
        supervisor = next(o for o in node["operators"] if o["name"].endswith("-supervisor"))
        context = trust_exactly(Path(node["cert"]).read_text())
        uri = node["url"].replace("https://", "wss://") + "/api/v1/stream"
        while not stop.is_set():
            try:
                async with websockets.connect(
                    uri, ssl=context, additional_headers={"Authorization": f"Bearer {supervisor['token']}"}
                ) as ws:
                    # Start with where each link stands: it may have come up before the feed did.
                    async with httpx.AsyncClient(verify=context, timeout=5) as client:
                        answer = await client.get(
                            node["api"] + "/links", headers={"Authorization": f"Bearer {supervisor['token']}"}
                        )
                    for link in answer.json().get("links", []) if answer.status_code == 200 else []:
                        show(party, f"link to {link['peer']} is {link['state']} (last test {link['last_test_at']})")
                    async for raw in ws:
                        line = describe(party, json.loads(raw))
                        if line:
                            show(party, line)
            except (OSError, httpx.HTTPError, websockets.WebSocketException):
                await asyncio.sleep(1)

    tasks = [asyncio.create_task(follow(p, n)) for p, n in info["nodes"].items()]
    await stop.wait()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)


def print_info(info: dict[str, Any]) -> None:
    """Print each node's address and demo logins."""
    for party, node in info["nodes"].items():
        out.print(f"\n[bold {party_colour(party)}]{party}[/] node  {node['url']}   console {node['console']}")
        out.print(f"    data {node['data']}   certificate {node['cert']}")
        for op in node["operators"]:
            out.print(
                f"    {op['name']:<18} {','.join(op['offices']):<40} password {op['password']:<24} token {op['token']}"
            )
    out.print("\nEverything above is also in demo.json. Send a message, for example:")
    example = _example_channel(info)
    if example is None:
        return
    channel, sender, to = example
    node = info["nodes"][sender.split(":")[0]]
    token = next(o["token"] for o in node["operators"] if o["name"] == sender.replace(":", "-"))
    out.print(
        f"  detente send --node {node['data']} --token {token} --channel {channel} --to {to} "
        '--precedence FLASH --text "Explosions reported near Panjgur; request clarification"',
        soft_wrap=True,
    )


def _example_channel(info: dict[str, Any]) -> tuple[str, str, str] | None:
    """Return (channel, sender, addressee) for the example: pk:dgmo to ir:dgmo if a channel links them,
    else the agreement's first channel; None if the agreement cannot be read."""
    try:
        doc = agreement_mod.load(Path(info["agreement"]).read_text(encoding="utf-8"), strict=False)
    except (OSError, Error):
        return None
    channels = sorted(doc.channels.values(), key=lambda c: set(c.offices) != {"pk:dgmo", "ir:dgmo"})
    if not channels:
        return None
    return channels[0].name, channels[0].offices[0], channels[0].offices[1]


def _parties(agreement: Path) -> tuple[str, ...]:
    """Return the parties of the agreement template, one node each (pk and ir if it cannot be read:
    setting the nodes up then says what is wrong with it)."""
    try:
        return tuple(agreement_mod.load(agreement.read_text(encoding="utf-8")).parties)
    except (OSError, UnicodeDecodeError, Error):
        return DEMO_PARTIES


def _workdir(value: str | Path) -> Path:
    # An empty value is a script's unset variable, not a directory: as a Path it would silently
    # become the current directory.
    if not str(value):
        raise typer.BadParameter("it is empty: name a directory, e.g. --workdir demo")
    return Path(value)


def _drill_speed(value: float) -> float:
    # Checked before the nodes start, as `detente drill run --speed` is.
    problem = speed_problem(value)
    if problem is not None:
        raise typer.BadParameter(problem)
    return value


@app.command()
def demo(
    workdir: Annotated[
        Path,
        typer.Option(
            parser=_workdir,
            metavar="DIR",
            help="where to put the nodes: a new or empty directory, or one an earlier demo made",
        ),
    ] = Path("demo"),
    setup_only: Annotated[bool, typer.Option("--setup-only", help="prepare the nodes and stop")] = False,
    agreement: Annotated[
        Path, typer.Option(help="the agreement template; the demo makes one node per party of it")
    ] = DEFAULT_AGREEMENT,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh/--no-fresh",
            help="set up new nodes, removing only what an earlier demo wrote in DIR; "
            "--no-fresh keeps an earlier demo's nodes, keys and tokens",
        ),
    ] = True,
    drill: Annotated[
        bool | None,
        typer.Option("--drill/--no-drill", help="play the January 2024 drill, with the hotline (default: on)"),
    ] = None,
    drill_speed: Annotated[
        float, typer.Option(help="drill seconds per real second, 1 to 10000000", callback=_drill_speed)
    ] = 240,
) -> None:
    """Prepare (and run) two nodes, Pakistan and Iran, on loopback, with a live feed of the link.

    DIR may be new, empty, or a directory an earlier demo made; any other directory is refused
    before anything is touched; in a demo's directory only what the demo wrote is removed.
    """
    info_path = workdir / "demo.json"
    parties = _parties(agreement)
    # The January 2024 drill is Pakistan and Iran's: a demo of other parties plays it only if asked.
    drilling = (not setup_only and set(parties) == set(DEMO_PARTIES)) if drill is None else drill
    if drill is None and not setup_only and not drilling:
        out.print(f"[dim]no drill: the January 2024 scenario is for pk and ir, not {', '.join(parties)}[/]")
    try:
        info = clear_workdir(workdir, keep=not fresh, parties=parties)
    except Error as exc:
        # A directory the demo may not use is a mistyped command line: usage and exit status 2.
        raise typer.BadParameter(exc.detail, param_hint="'--workdir'") from exc
    if info is None:
        template = drill_template(workdir, agreement) if drilling else agreement
        info = setup_demo(workdir, template, parties=parties)
    if setup_only:
        print(f"prepared {workdir}; start each node with: detente serve --data {workdir}/<party>")
        print(info_path)
        return
    children = {p: start_node(n["data"], workdir / f"{p}.log") for p, n in info["nodes"].items()}
    try:
        for node in info["nodes"].values():
            wait_until_up(node)
        print_info(info)
        if drilling:
            play_demo_drill(workdir, drill_speed)
        nodes = "both nodes" if len(info["nodes"]) == 2 else "every node"
        out.print(f"\n[bold]Live feed[/] (Ctrl-C stops {nodes}):")
        asyncio.run(_run_feed(info))
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        out.print("both nodes stopped" if len(info["nodes"]) == 2 else f"the {len(info['nodes'])} nodes stopped")


def drill_template(workdir: Path, agreement: Path) -> Path:
    """Write the drill copy of the agreement template (`node.drill_nodes.drill_agreement`) and return it."""
    from detente.node.drill_nodes import drill_agreement

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "agreement-template.toml"
    path.write_text(drill_agreement(agreement.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def play_demo_drill(workdir: Path, speed: float) -> None:
    """Play the January 2024 scenario, with the hotline, on the demo nodes (Ctrl-C stops everything)."""
    from detente.cli.drill import DEMO_SCENARIO, run_on

    out.print(f"\n[bold]Drill[/]: {DEMO_SCENARIO.name}, with the hotline, at {speed:g}× (--no-drill to skip it)")
    try:
        run_on(DEMO_SCENARIO, workdir / "demo.json", "with-hotline", speed, workdir / "drill-reports")
    except Unavailable as exc:
        out.print(f"[red]the drill stopped: {exc.detail}[/]")


async def _run_feed(info: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Event loops without signal handlers (Windows) raise NotImplementedError: there Ctrl-C
        # still ends the demo through KeyboardInterrupt, so nothing is left undone.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if os.environ.get("DETENTE_DEMO_SECONDS"):
        loop.call_later(float(os.environ["DETENTE_DEMO_SECONDS"]), stop.set)
    await feed(info, stop)
