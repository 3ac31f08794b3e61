"""Test support: real nodes in separate processes, over loopback with TLS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import Connection, Engine, create_engine, func, select

from detente.node.demo import setup_demo
from detente.node.tls import trust_exactly
from detente.store.db import make_engine
from detente.store.tables import envelopes, log, outbox

ROOT = Path(__file__).resolve().parents[1]
AGREEMENT = ROOT / "agreements" / "pk-ir.toml"
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)
        last = predicate()
    return last


def test_agreement(tmp: Path, extra: str = "") -> Path:
    """Write the shipped agreement plus short deadlines on the liaison channel (for overdue tests)."""
    text = AGREEMENT.read_text(encoding="utf-8")
    text += "\n[channels.liaison.deadlines]\nFLASH = 2\nIMMEDIATE = 2\n" + extra
    path = tmp / "agreement-test.toml"
    path.write_text(text, encoding="utf-8")
    return path


class NodeProc:
    """One node running as `python -m detente serve` in its own process."""

    def __init__(self, info: dict[str, Any], log_path: Path) -> None:
        self.info = info
        self.party: str = info["party"]
        self.data = Path(info["data"])
        self.url: str = info["url"]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.context = trust_exactly(Path(info["cert"]).read_text())

    def start(self, wait: bool = True, clock_skew: float = 0.0) -> None:
        """Start the node; `clock_skew` seconds shift its clock alone (`tests/clock_skew`)."""
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if clock_skew:
            shim = str(Path(__file__).parent / "clock_skew")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [shim, env.get("PYTHONPATH")]))
            env["DETENTE_TEST_CLOCK_SKEW"] = str(clock_skew)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "detente", "serve", "--data", str(self.data)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        if wait:
            wait_for(self.is_up, 30, 0.1, f"node {self.party} to start (log: {self.log_path})")

    def is_up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"node {self.party} exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/api/v1/openapi.json", verify=self.context, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def token(self, name: str) -> str:
        return str(next(o["token"] for o in self.info["operators"] if o["name"] == name))

    def client(self, operator: str | None = None, token: str | None = None) -> httpx.Client:
        headers = {}
        if operator or token:
            headers["Authorization"] = f"Bearer {token or self.token(operator or '')}"
        return httpx.Client(base_url=self.url, verify=self.context, headers=headers, timeout=30)

    def message(self, operator: str, message_id: str, *, missing_ok: bool = False) -> dict[str, Any]:
        """The operator's view of one message (`GET /api/v1/messages/{id}`); {} for a 404 if `missing_ok`."""
        with self.client(operator) as client:
            response = client.get(f"/api/v1/messages/{message_id}")
        if missing_ok and response.status_code == 404:
            return {}
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def created(self, operator: str, path: str, request: dict[str, Any]) -> dict[str, Any]:
        """POST `request` to `path` as `operator`; assert 201 and return the answer."""
        with self.client(operator) as client:
            response = client.post(path, json=request)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def engine(self) -> Engine:
        from detente.node.config import load_config

        return make_engine(load_config(self.data).db)

    def counts(self) -> dict[str, int]:
        """Rows in the log, envelopes and outbox tables, read straight from the node's database."""
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return {
                    name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
                    for name, table in (("log", log), ("envelopes", envelopes), ("outbox", outbox))
                }
        finally:
            engine.dispose()


# A third state joins the shipped agreement for the tests of a group: Afghanistan, with a Foreign
# Ministry and a DGMO, and a DGMO channel to each of the other two (channels are bilateral).
GROUP = """
[parties.af]
name = "Islamic Emirate of Afghanistan"
utc_offset = "+04:30"
url = ""
vkey = ""
tls_fingerprint = ""

[offices."af:fs"]
[offices."af:fs".title]
en = "Ministry of Foreign Affairs, Kabul"
ur = "وزارتِ خارجہ، کابل"
fa = "وزارت امور خارجه، کابل"

[offices."af:dgmo"]
alternate = "af:fs"
[offices."af:dgmo".title]
en = "Directorate of Military Operations, Kabul"
ur = "ڈائریکٹوریٹ ملٹری آپریشنز، کابل"
fa = "ریاست عملیات نظامی، کابل"

[channels.dgmo-pk-af]
offices = ["pk:dgmo", "af:dgmo"]

[channels.dgmo-ir-af]
offices = ["ir:dgmo", "af:dgmo"]
"""


def group_agreement(tmp: Path) -> Path:
    """Write the shipped agreement with a third party, af, and DGMO channels to pk and ir."""
    text = AGREEMENT.read_text(encoding="utf-8")
    head, offices = text.split('\n[offices."pk:fs"]', 1)  # TOML wants the party's table before the offices'
    party, rest = GROUP.split('\n[offices."af:fs"]', 1)
    path = tmp / "agreement-group.toml"
    path.write_text(head + party + '\n[offices."pk:fs"]' + offices + '\n[offices."af:fs"]' + rest, encoding="utf-8")
    return path


class Cluster:
    """Nodes prepared like the demo and started as real processes: pk and ir, or the parties of a group."""

    def __init__(
        self, workdir: Path, *, db_urls: dict[str, str] | None = None, link_test_seconds: float = 1.0,
        group: bool = False,
    ) -> None:  # fmt: skip
        self.workdir = workdir
        agreement = group_agreement(workdir) if group else test_agreement(workdir)
        parties = ("pk", "ir", "af") if group else ("pk", "ir")
        self.info = setup_demo(
            workdir / "nodes", agreement, db_urls=db_urls, link_test_seconds=link_test_seconds, parties=parties
        )
        self.nodes = {p: NodeProc(n, workdir / f"{p}.log") for p, n in self.info["nodes"].items()}

    def __getitem__(self, party: str) -> NodeProc:
        return self.nodes[party]

    def start(self) -> Cluster:
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            wait_for(node.is_up, 30, 0.1, f"node {node.party}")
        return self

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()


@contextmanager
def running_cluster(workdir: Path, **options: Any) -> Iterator[Cluster]:
    """The started nodes of a `Cluster` in `workdir` (its options), stopped when the block ends."""
    cluster = Cluster(workdir, **options).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def sqlite_engine(path: Path) -> Engine:
    return create_engine(f"sqlite:///{path}")


def service_free_counts(node: NodeProc) -> dict[str, int]:
    """Rows of envelopes, log entries and outbox rows, leaving out link tests (they run on a timer)."""
    engine = node.engine()
    try:
        with engine.connect() as conn:
            env = int(
                conn.execute(
                    select(func.count()).select_from(envelopes).where(envelopes.c.type != "link.test")
                ).scalar()
                or 0
            )
            logged = int(
                conn.execute(
                    select(func.count())
                    .select_from(log.join(envelopes, envelopes.c.id == log.c.envelope_id, isouter=True))
                    .where((envelopes.c.type != "link.test") | envelopes.c.type.is_(None))
                ).scalar()
                or 0
            )
            queued = int(conn.execute(select(func.count()).select_from(outbox)).scalar() or 0)
        return {"envelopes": env, "log": logged, "outbox": queued}
    finally:
        engine.dispose()


def quiet(cluster: Cluster) -> None:
    """Wait until no node has anything left to deliver."""
    for node in cluster.nodes.values():
        wait_for(lambda n=node: n.counts()["outbox"] == 0, what=f"{node.party}'s outbox to drain")


def run_async(coro: Any) -> Any:
    """Run a coroutine to completion in a thread of its own.

    `asyncio.run` refuses to start while an event loop runs in the calling thread, and the
    browser tests' Playwright keeps one running in the main thread for the rest of the session.
    """
    import asyncio

    return in_thread(lambda: asyncio.run(coro))


def in_thread(call: Callable[[], T]) -> T:
    """Return `call()`, run in a thread of its own (for code that calls `asyncio.run`; see `run_async`)."""
    import threading

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


RAW = b"{\x00\xff}"  # not text: a binary column must give back exactly these bytes


def envelope_row(n: int, **extra: Any) -> dict[str, Any]:
    """The columns of envelope row `n` for storage tests (a FLASH text sent to ir), with `extra` over them."""
    values = {
        "id": f"01a20000-0000-7000-8000-{n:012d}", "direction": "out", "peer": "ir", "channel": "dgmo",
        "from_office": "pk:dgmo", "to_office": "ir:dgmo", "seq": n, "type": "hotline.text", "precedence": "FLASH",
        "author": "a", "created": "2024-01-16T13:05:00.000Z", "raw": RAW, "log_index": n, "needs_ack": True,
        "deadline": "2024-01-16T13:15:00.000Z", "state": "accepted", "recorded_at": "2024-01-16T13:05:00.000Z",
    }  # fmt: skip
    values.update(extra)
    return values


def store_rows(data: Path, rows: Iterable[dict[str, Any]], also: Callable[[Connection], object] | None = None) -> None:
    """Put envelope rows (`envelope_row`) in the store of the node at `data`, not running, in one
    transaction; `also` runs first on the same connection (a link's state, say)."""
    from detente.node.config import load_config
    from detente.store import messages as db

    engine = make_engine(load_config(data).db)
    try:
        with engine.begin() as conn:
            if also is not None:
                also(conn)
            for row in rows:
                db.insert_envelope(conn, **row)
    finally:
        engine.dispose()


def ratifications(data: Path, party: str) -> dict[str, str]:
    """The agreements `party`'s node in `data` has ratified (hash: time), read from its database."""
    from detente.node.config import load_config
    from detente.store import operators as operators_db

    engine = make_engine(load_config(data).db)
    try:
        with engine.connect() as conn:
            return operators_db.ratified_by(conn, party)
    finally:
        engine.dispose()
