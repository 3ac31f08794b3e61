"""An agreement refuses any key it does not know, at every level, naming it, its table and the closest known key.

A misspelled key used to be dropped silently, so every party ratified a document that said something
else than its authors meant (no alternate, no deadlines, the default link test). The agreements in
use (shipped, completed by the demo and the tests, the drill's copy, the scenarios') still load.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from detente.core import agreement as agreement_mod
from detente.errors import Invalid
from detente.node.drill_nodes import drill_agreement
from record_support import agreement_text_and_keys
from support import test_agreement as agreement_for_tests

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "agreements" / "pk-ir.toml"
OFFICE = "known keys: alternate, title"
PARTY = "known keys: name, tls_fingerprint, url, utc_offset, vkey"
HEAD = "known keys: id, languages, link_test_seconds, title"
CHANNEL = "known keys: deadlines, offices, types"
TOP = "known keys: agreement, channels, codebook, consultations, lead_times, offices, parties, response_deadlines"


def text() -> str:
    return SHIPPED.read_text(encoding="utf-8")


def refused(changed: str) -> str:
    with pytest.raises(Invalid) as caught:
        agreement_mod.load(changed)
    return caught.value.detail


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # The four the QA pass found: each used to load, with the key dropped.
        (
            'alternate = "pk:fs"',
            'alternative = "pk:fs"',
            f"[offices.\"pk:dgmo\"]: unknown key 'alternative' (did you mean 'alternate'?); {OFFICE}",
        ),
        (
            "link_test_seconds = 3600",
            "link_test_secnds = 5",
            f"[agreement]: unknown key 'link_test_secnds' (did you mean 'link_test_seconds'?); {HEAD}",
        ),
        (
            'tls_fingerprint = ""',
            'tls_fingerprnt = ""',
            f"[parties.pk]: unknown key 'tls_fingerprnt' (did you mean 'tls_fingerprint'?); {PARTY}",
        ),
        (
            "[channels.fs]",
            "[channels.dgmo.deadline]\nFLASH = 60\n\n[channels.fs]",
            f"[channels.dgmo]: unknown key 'deadline' (did you mean 'deadlines'?); {CHANNEL}",
        ),
        # Every other level.
        ("[channels.fs]", "[chanels.x]\ny = 1\n\n[channels.fs]", "agreement (top level): unknown key 'chanels'"),
        ("[lead_times]", "[lead_time]", f"unknown key 'lead_time' (did you mean 'lead_times'?); {TOP}"),
        (
            "[consultations.joint-coordination]",
            "[consultation.joint-coordination]",
            "agreement (top level): unknown key 'consultation' (did you mean 'consultations'?)",
        ),
        ('id = "pk-ir-2024"', 'id = "pk-ir-2024"\nsigned = "2024-01-29"', "[agreement]: unknown key 'signed'; "),
        ('name = "Islamic Republic of Iran"', 'nmae = "Islamic Republic of Iran"', "[parties.ir]: unknown key 'nmae'"),
        ('utc_offset = "+05:00"', 'utc_ofset = "+05:00"', "[parties.pk]: unknown key 'utc_ofset' (did you mean"),
        ('alternate = "pk:dgmo"', 'alternat = "pk:dgmo"', "[offices.\"pk:lo-zahedan\"]: unknown key 'alternat'"),
        ('offices = ["pk:fs", "ir:fs"]', 'offices = ["pk:fs", "ir:fs"]\ntype = ["code"]', "did you mean 'types'?"),
        (
            "[channels.liaison]",
            "[channels.dgmo.deadlines]\nFLAHS = 60\n\n[channels.liaison]",
            "[channels.dgmo].deadlines: unknown key 'FLAHS' (did you mean 'FLASH'?); "
            "known keys: FLASH, IMMEDIATE, PRIORITY, ROUTINE",
        ),
        # The vocabulary tables check their own keys (`core.codebook`), with the same sentence.
        (
            'precedence = "IMMEDIATE"',
            'precedense = "IMMEDIATE"',
            "[[codebook]] MESSAGE-RECEIVED: unknown key 'precedense' (did you mean 'precedence'?); "
            "known keys: code, params, precedence, text",
        ),
        (
            "day_of_month = 15",
            "day_of_month = 15\nweekday = 3",
            "[consultations.border-security]: unknown key 'weekday'; known keys: agenda, channel, day_of_month, ",
        ),
        (
            '"missile.prenotify" = 72',
            '"missile.prenotfy" = 72',
            "[lead_times]: unknown message type 'missile.prenotfy' (did you mean 'missile.prenotify'?); "
            "known message types: ",
        ),
        (
            '"clarification.request" = 48',
            '"clarification" = 48',
            "[response_deadlines]: unknown message type 'clarification' (did you mean 'clarification.request'?)",
        ),
    ],
)
def test_an_unknown_key_is_named_with_its_table(old: str, new: str, message: str) -> None:
    assert old in text()
    assert message in refused(text().replace(old, new, 1))


def test_a_key_like_no_known_one_gets_no_suggestion() -> None:
    detail = refused(text().replace('alternate = "pk:fs"', 'colour = "red"', 1))
    assert detail == f"[offices.\"pk:dgmo\"]: unknown key 'colour'; {OFFICE}"


def test_every_unknown_key_of_a_table_is_named() -> None:
    detail = refused(text().replace('alternate = "pk:fs"', 'alternative = "pk:fs"\ncolour = "red"', 1))
    assert (
        detail == f"[offices.\"pk:dgmo\"]: unknown keys 'alternative' (did you mean 'alternate'?), 'colour'; {OFFICE}"
    )


def test_from_dict_refuses_unknown_keys_too() -> None:
    raw: dict[str, Any] = tomllib.loads(text())
    raw["parties"]["ir"]["tls_fingerprnt"] = raw["parties"]["ir"].pop("tls_fingerprint")
    with pytest.raises(Invalid, match=r"^\[parties\.ir\]: unknown key 'tls_fingerprnt' \(did you mean"):
        agreement_mod.from_dict(raw)


def test_a_misspelled_key_is_named_before_the_table_it_leaves_missing() -> None:
    detail = refused(text().replace("[channels.", "[chanels."))
    assert detail.startswith("agreement (top level): unknown key 'chanels' (did you mean 'channels'?)")


def _scenario_agreements() -> list[Path]:
    found = []
    for scenario in sorted((ROOT / "scenarios").glob("*.yaml")):
        match = re.search(r"(?m)^agreement:\s*(\S+)\s*$", scenario.read_text(encoding="utf-8"))
        assert match, scenario
        found.append((scenario.parent / match.group(1)).resolve())
    return found


def test_the_agreements_in_use_still_load(tmp_path: Path) -> None:
    files = sorted({*ROOT.joinpath("agreements").glob("*.toml"), *_scenario_agreements()})
    assert SHIPPED in files
    texts = {str(path): path.read_text(encoding="utf-8") for path in files}
    texts["tests' agreement"] = agreement_for_tests(tmp_path).read_text(encoding="utf-8")
    texts["completed as the demo does"] = agreement_text_and_keys()[0]
    texts["the drill's copy"] = drill_agreement(text())
    for name, body in texts.items():
        doc = agreement_mod.load(body)
        assert doc.parties and doc.offices and doc.channels, name
    completed = agreement_mod.load(texts["completed as the demo does"])
    assert completed.is_complete() and completed.alternates("pk:lo-zahedan") == ["pk:dgmo", "pk:fs"]
    assert agreement_mod.load(texts["tests' agreement"]).deadlines("liaison")


def test_an_agreement_ratified_before_the_rule_still_loads_with_its_unknown_keys_named(tmp_path: Path) -> None:
    """The agreement in force, earlier ones and an audit's are read with strict=False: a hotline must
    not stop serving over a key that never had an effect, but the key is named for a warning."""
    typo = (
        text()
        .replace('alternate = "pk:fs"', 'alternative = "pk:fs"', 1)
        .replace("link_test_seconds = 3600", "link_test_secnds = 5")
    )
    with pytest.raises(Invalid, match="unknown key 'link_test_secnds'"):
        agreement_mod.load(typo)  # what init and ratify do: the first one met
    doc = agreement_mod.load(typo, strict=False)
    assert doc.ignored == (
        f"[agreement]: unknown key 'link_test_secnds' (did you mean 'link_test_seconds'?); {HEAD}",
        f"[offices.\"pk:dgmo\"]: unknown key 'alternative' (did you mean 'alternate'?); {OFFICE}",
    )
    assert doc.office("pk:dgmo").alternate is None and doc.link_test_seconds == 3600  # as it always was read
    assert doc.hash == agreement_mod.load(typo, strict=False).hash  # the hash covers the text as ratified
    assert agreement_mod.load(text(), strict=False).ignored == ()
    # An unknown precedence was refused before the rule too: it stays refused.
    with pytest.raises(Invalid, match="deadlines: unknown key 'FLAHS'"):
        agreement_mod.load(text() + "\n[channels.dgmo.deadlines]\nFLAHS = 60\n", strict=False)

    from detente.node.config import NodeConfig

    config = NodeConfig(tmp_path, "pk", "127.0.0.1", 8443, "sqlite:///unused")
    config.agreement_path.write_text(typo, encoding="utf-8")
    assert config.agreement().ignored == doc.ignored  # the node in force reads it leniently
