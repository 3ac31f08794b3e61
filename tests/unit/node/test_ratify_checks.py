"""What `agreement ratify` and `serve` check of this node's own entry in the agreement.

- the TLS fingerprint: `ratify` refuses, before writing anything, an agreement that pins another
  certificate than tls.crt (as `serve` does), and both name the two fingerprints in full;
- the url: `ratify` and `serve` warn, without refusing, when peers would not reach the node there;
- the agreement in force, ratified again, changes nothing: not even the time of its ratification.

Nodes are made with `init_node` and never started, except by the one test that runs `serve`;
commands run through `detente.cli.main` in this process (`cli_support.detente`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_support import Ran, assert_error, detente
from detente.core import agreement as agreement_mod
from detente.core.keys import Signer
from detente.errors import Invalid, NotFound
from detente.node import ratification
from detente.node.config import NodeConfig, load_config
from detente.node.demo import fill_agreement, free_port
from detente.node.serving import address_warnings, check_pinned_certificate, check_tls
from detente.node.setup import init_node
from support import ratifications

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = ROOT / "agreements" / "pk-ir.toml"


def make_nodes(root: Path) -> dict[str, dict[str, str]]:
    """Create pk and ir in `root` (not ratified); return what the agreement should pin for each."""
    made = {p: init_node(root / p, p, AGREEMENT, "127.0.0.1", free_port(), None) for p in ("pk", "ir")}
    return {p: {"url": r.config.url, "vkey": r.vkey, "tls_fingerprint": r.fingerprint} for p, r in made.items()}


def write(root: Path, values: dict[str, dict[str, str]], name: str = "agreement.toml") -> Path:
    path = root / name
    path.write_text(fill_agreement(AGREEMENT.read_text(encoding="utf-8"), values, None), encoding="utf-8")
    return path


def with_pk(values: dict[str, dict[str, str]], **changes: str) -> dict[str, dict[str, str]]:
    return {**values, "pk": {**values["pk"], **changes}}


def ratify(data: Path, agreement: Path) -> Ran:
    return detente("agreement", "ratify", "--data", str(data), "--agreement", str(agreement))


def files(data: Path) -> dict[str, bytes]:
    """Every file of a data directory but the database's, byte for byte."""
    return {
        str(p.relative_to(data)): p.read_bytes()
        for p in sorted(data.rglob("*"))
        if p.is_file() and "node.db" not in p.name
    }


def one_digit_off(fingerprint: str, at: int) -> str:
    return fingerprint[:at] + ("0" if fingerprint[at] != "0" else "1") + fingerprint[at + 1 :]


# -- the TLS fingerprint -------------------------------------------------------------------------


def test_ratify_refuses_a_fingerprint_copied_wrong_and_changes_nothing(tmp_path: Path) -> None:
    values = make_nodes(tmp_path)
    pk = tmp_path / "pk"
    real = values["pk"]["tls_fingerprint"]
    wrong = one_digit_off(real, 20)  # past the 16 digits the old message showed
    before = files(pk)
    refused = ratify(pk, write(tmp_path, with_pk(values, tls_fingerprint=wrong)))
    assert_error(
        refused,
        f"Invalid: {pk / 'tls.crt'} is not the certificate the agreement pins for pk: its fingerprint is {real}, "
        f"the agreement pins {wrong} (they differ from hex digit 21 on): every peer would refuse this node. "
        "Correct tls_fingerprint under [parties.pk], or put back the certificate it pins",
    )
    assert files(pk) == before
    assert ratifications(pk, "pk") == {}
    # Corrected, it is ratified.
    assert ratify(pk, write(tmp_path, values)).code == 0
    assert len(ratifications(pk, "pk")) == 1


def test_ratify_refuses_a_node_without_its_certificate(tmp_path: Path) -> None:
    values = make_nodes(tmp_path)
    pk = tmp_path / "pk"
    (pk / "tls.crt").unlink()
    before = files(pk)
    refused = ratify(pk, write(tmp_path, values))
    assert_error(refused, f"NotFound: {pk / 'tls.crt'} is missing: it holds the node's TLS certificate")
    assert files(pk) == before and ratifications(pk, "pk") == {}
    with pytest.raises(NotFound):
        ratification.ratify(pk, tmp_path / "agreement.toml")


def test_serve_and_ratify_share_the_check_and_name_both_fingerprints(tmp_path: Path) -> None:
    values = make_nodes(tmp_path)
    config = load_config(tmp_path / "pk")
    real = values["pk"]["tls_fingerprint"]
    wrong = one_digit_off(real, 63)
    doc = agreement_mod.load(write(tmp_path, with_pk(values, tls_fingerprint=wrong)).read_text(encoding="utf-8"))
    for check in (check_tls, check_pinned_certificate):
        with pytest.raises(Invalid) as caught:
            check(config, doc)
        assert f"its fingerprint is {real}, the agreement pins {wrong} (they differ from hex digit 64 on)" in (
            caught.value.detail
        )
    right = agreement_mod.load(write(tmp_path, values).read_text(encoding="utf-8"))
    check_tls(config, right)
    check_pinned_certificate(config, right)


# -- the url ---------------------------------------------------------------------------------------


def doc_with_pk_url(url: str) -> agreement_mod.Agreement:
    values = {
        p: {"url": f"https://127.0.0.1:{8440 + i}", "vkey": Signer.generate(f"{p}.detente/log").verifier.vkey()}
        for i, p in enumerate(("pk", "ir"))
    }
    values["pk"]["url"] = url
    for v in values.values():
        v["tls_fingerprint"] = "0" * 64
    return agreement_mod.load(fill_agreement(AGREEMENT.read_text(encoding="utf-8"), values, None))


UNREACHED = "but this node listens on {}: peers will not reach it unless that address is forwarded here"
UNUSABLE = "but {} is no address a peer can connect to: give the address peers reach this node at (it listens on {})"


@pytest.mark.parametrize(
    ("host", "port", "url", "expected"),
    [
        ("127.0.0.1", 18454, "https://127.0.0.1:18454", []),
        ("127.0.0.1", 18454, "https://127.0.0.1:18455", [UNREACHED.format("127.0.0.1:18454")]),
        ("0.0.0.0", 8443, "https://hotline.example.pk:8443", []),
        ("0.0.0.0", 8443, "https://hotline.example.pk", [UNREACHED.format("0.0.0.0:8443")]),  # 443: a proxy?
        ("0.0.0.0", 8443, "https://127.0.0.1:8443", []),  # 0.0.0.0 includes loopback
        ("127.0.0.1", 8443, "https://localhost:8443", []),
        ("localhost", 8443, "https://127.0.0.1:8443", []),
        ("::1", 8443, "https://[::1]:8443", []),
        ("10.0.0.5", 8443, "https://127.0.0.1:8443", [UNREACHED.format("10.0.0.5:8443")]),
        ("127.0.0.1", 8443, "https://127.0.0.2:8443", [UNREACHED.format("127.0.0.1:8443")]),
        ("::", 8443, "https://127.0.0.1:8443", [UNREACHED.format("[::]:8443")]),  # bound IPv6 only
        ("0.0.0.0", 8443, "https://0.0.0.0:8443", [UNUSABLE.format("0.0.0.0", "0.0.0.0:8443")]),
        (
            "0.0.0.0",
            8443,
            "https://[::]:9443",
            [UNUSABLE.format("::", "0.0.0.0:8443"), UNREACHED.format("0.0.0.0:8443")],
        ),
    ],
)
def test_address_warnings(host: str, port: int, url: str, expected: list[str]) -> None:
    config = NodeConfig(Path("/nonexistent"), "pk", host, port, "sqlite://")
    said = f"the agreement gives pk's address as {url}"
    assert address_warnings(config, doc_with_pk_url(url)) == [
        f"{said} {line}" if line.startswith("but this") else f"{said}, {line}" for line in expected
    ]


def test_address_warnings_for_an_unusable_url_or_none() -> None:
    config = NodeConfig(Path("/nonexistent"), "pk", "127.0.0.1", 8443, "sqlite://")
    assert address_warnings(config, doc_with_pk_url("https://127.0.0.1:99999")) == [
        "the agreement gives pk's address as https://127.0.0.1:99999, which is not a usable URL: peers will not "
        "reach this node, which listens on 127.0.0.1:8443"
    ]
    assert address_warnings(config, agreement_mod.load(AGREEMENT.read_text(encoding="utf-8"))) == []


def test_ratify_and_serve_warn_of_a_url_that_is_not_where_the_node_listens(tmp_path: Path) -> None:
    values = make_nodes(tmp_path)
    pk = tmp_path / "pk"
    config = load_config(pk)
    elsewhere = f"https://127.0.0.1:{config.port + 1}"
    warning = (
        f"warning: the agreement gives pk's address as {elsewhere} but this node listens on 127.0.0.1:{config.port}: "
        "peers will not reach it unless that address is forwarded here"
    )
    done = ratify(pk, write(tmp_path, with_pk(values, url=elsewhere)))
    assert done.code == 0, done.stderr
    assert done.stderr.splitlines() == [warning]  # a warning, not a refusal: ratified
    assert done.stdout.startswith("ratified agreement pk-ir-2024 ")
    assert len(ratifications(pk, "pk")) == 1

    proc = subprocess.Popen(
        [sys.executable, "-m", "detente", "serve", "--data", str(pk)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode("utf-8")
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("node pk serving on"):
                break
        assert lines[-1] == f"node pk serving on {config.url}", lines
        assert warning in lines[:-1]
        # A Ctrl-C the moment it says it serves stops it (one that early was lost: the node served on).
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=15)[0].decode("utf-8")
        assert proc.returncode == 0 and rest.rstrip().endswith("node pk stopped"), rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_the_ratified_result_carries_the_warnings(tmp_path: Path) -> None:
    values = make_nodes(tmp_path)
    ir = tmp_path / "ir"
    assert ratification.ratify(ir, write(tmp_path, values)).warnings == ()
    port = load_config(ir).port
    values["ir"]["url"] = f"https://0.0.0.0:{port}"
    done = ratification.ratify(ir, write(tmp_path, values, "amended.toml"), replace=True)
    assert done.replaced is not None
    assert done.warnings == (
        f"the agreement gives ir's address as https://0.0.0.0:{port}, but 0.0.0.0 is no address a peer can "
        f"connect to: give the address peers reach this node at (it listens on 127.0.0.1:{port})",
    )


# -- the agreement in force, again -----------------------------------------------------------------


def test_ratifying_the_agreement_in_force_again_keeps_the_ratification_and_its_time(tmp_path: Path) -> None:
    """QA: "ratifying the agreement in force again changes nothing", yet `agreement show` gave a new time."""
    values = make_nodes(tmp_path)
    pk = tmp_path / "pk"
    assert ratify(pk, write(tmp_path, values)).code == 0
    first, shown = ratifications(pk, "pk"), ratify_show(pk)
    time.sleep(0.01)  # the stored time has milliseconds: a new one would differ
    # The same agreement, laid out otherwise (a comment): the hash covers the content only.
    again = write(tmp_path, values, "copy.toml")
    again.write_text("# our copy\n" + again.read_text(encoding="utf-8"), encoding="utf-8")
    done = ratify(pk, again)
    assert done.code == 0, done.stderr
    assert done.stdout.splitlines()[2] == "this agreement was in force already: nothing else changed"
    assert ratifications(pk, "pk") == first and ratify_show(pk) == shown


def ratify_show(data: Path) -> str:
    """The line of `agreement show` that says when this node ratified the agreement in force."""
    shown = detente("agreement", "show", "--data", str(data))
    assert shown.code == 0, shown.stderr
    return next(line for line in shown.stdout.splitlines() if line.startswith("ratified by this node"))
