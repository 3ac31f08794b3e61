"""`user add --lang` with a language the agreement lists but the console has no pages in (Pashto).

QA: an agreement listing `ps` took `user add --lang ps` without a word, and the console then showed
that operator English pages and English codebook texts. The language is still taken (the command
line and the agreement's texts use it), with a `warning:` line that says what the console does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_support import assert_error, detente
from detente.node.demo import setup_demo
from pashto_support import pashto_agreement


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pk node of a demo under an agreement in English, Urdu, Persian and Pashto."""
    workdir = tmp_path_factory.mktemp("demo")
    info: dict[str, Any] = setup_demo(workdir, pashto_agreement(tmp_path_factory.mktemp("agreement")))
    return Path(info["nodes"]["pk"]["data"])


def _add(data: Path, name: str, lang: str) -> Any:
    return detente("user", "add", "--data", str(data), "--name", name, "--office", "pk:dgmo", "--role", "operator",
                   "--lang", lang, "--password-stdin", stdin=f"{name}-password\n".encode())  # fmt: skip


def _language(data: Path, name: str) -> str | None:
    listed = json.loads(detente("user", "list", "--data", str(data)).stdout)
    return next((o["lang"] for o in listed if o["name"] == name), None)


def test_a_language_the_console_has_no_pages_in_is_taken_with_a_warning(data: Path) -> None:
    added = _add(data, "pk-ps", "PS")
    assert added.code == 0, added.stderr
    assert added.stdout.startswith("operator pk-ps (operator) for pk:dgmo\ntoken dtn_")
    warning = added.stderr.splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: the console has no pages in 'ps'"), added.stderr
    assert "its pages will be in English for pk-ps" in warning[0]
    assert "codebook texts and messages are shown in 'ps' where the agreement has them" in warning[0]
    assert _language(data, "pk-ps") == "ps"


def test_a_language_of_the_console_gets_no_warning(data: Path) -> None:
    added = _add(data, "pk-ur", "ur")
    assert added.code == 0 and added.stderr == "", added.stderr
    assert _language(data, "pk-ur") == "ur"


def test_a_language_the_agreement_does_not_list_is_still_refused(data: Path) -> None:
    assert_error(_add(data, "pk-tr", "tr"), "language 'tr' is not one of the agreement's")
    assert _language(data, "pk-tr") is None
