"""The agreement: parsing, validation with named errors, hashing, lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from detente.core import agreement as agreement_mod
from detente.core.keys import Signer
from detente.core.precedence import Precedence
from detente.errors import Invalid, MalformedError

SHIPPED = Path(__file__).resolve().parents[3] / "agreements" / "pk-ir.toml"


def text() -> str:
    return SHIPPED.read_text(encoding="utf-8")


def test_shipped_agreement_models_the_2024_arrangement() -> None:
    doc = agreement_mod.load(text())
    assert set(doc.parties) == {"pk", "ir"}
    assert {"pk:fs", "pk:dgmo", "pk:lo-zahedan", "ir:fs", "ir:dgmo", "ir:lo-turbat"} <= set(doc.offices)
    assert doc.channel("dgmo").offices == ("pk:dgmo", "ir:dgmo")
    assert doc.channel("liaison").other("pk:lo-zahedan") == "ir:lo-turbat"
    assert doc.alternates("pk:dgmo") == ["pk:fs"]
    assert doc.alternates("ir:lo-turbat") == ["ir:dgmo", "ir:fs"]
    assert doc.languages == ("en", "ur", "fa")
    assert not doc.is_complete()


def test_an_office_is_titled_in_each_language_of_the_agreement() -> None:
    doc = agreement_mod.load(text())
    dgmo = doc.offices["pk:dgmo"]
    assert dgmo.title == "Director-General of Military Operations, GHQ Rawalpindi"  # English, where one title is shown
    assert dgmo.title_in("ur") == "ڈائریکٹر جنرل ملٹری آپریشنز، جی ایچ کیو راولپنڈی"
    assert dgmo.title_in("fa").startswith("مدیر کل عملیات نظامی")
    assert dgmo.title_in("ps") == dgmo.title  # a language the agreement does not give
    # One string still titles the office in every language, as agreements written before did.
    one = agreement_mod.load(_one_title_for_pk_fs())
    assert one.offices["pk:fs"].title_in("ur") == "Foreign Secretary, Ministry of Foreign Affairs, Islamabad"
    assert one.offices["pk:fs"].titles == {}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'fa = "افسر رابط ایران، تربت"\n',
            "",
            r'\[offices."ir:lo-turbat"\]: title lacks language\(s\) fa of the agreement',
        ),
        (
            'fa = "افسر رابط ایران، تربت"\n',
            'fa = "x"\nde = "y"\n',
            "title has language\\(s\\) de the agreement does not list",
        ),
        ('fa = "افسر رابط ایران، تربت"\n', 'fa = " \u200b"\n', r"title.fa must be a non-empty string"),
        ('fa = "افسر رابط ایران، تربت"\n', "fa = 5\n", r"title.fa must be a non-empty string"),
    ],
)
def test_a_title_per_language_is_checked_as_a_codebook_text_is(old: str, new: str, message: str) -> None:
    assert old in text()
    with pytest.raises(Invalid, match=message):
        agreement_mod.load(text().replace(old, new, 1))


def _one_title_for_pk_fs() -> str:
    """The shipped agreement with pk:fs titled by one string, as agreements written before titles per language."""
    plain = text().replace('[offices."pk:fs".title]\nen = "Foreign Secretary', 'title = "Foreign Secretary', 1)
    plain = plain.replace('ur = "سیکرٹری خارجہ، وزارتِ خارجہ، اسلام آباد"\n', "", 1)
    return plain.replace('fa = "معاون وزیر امور خارجه، وزارت امور خارجه، اسلام‌آباد"\n', "", 1)


def test_a_blank_or_odd_title_is_refused() -> None:
    plain = _one_title_for_pk_fs()
    assert agreement_mod.load(plain).offices["pk:fs"].title.startswith("Foreign Secretary")
    with pytest.raises(Invalid, match=r'\[offices."pk:fs"\]: title must not be blank'):
        agreement_mod.load(
            plain.replace('title = "Foreign Secretary, Ministry of Foreign Affairs, Islamabad"', 'title = "  "')
        )
    with pytest.raises(Invalid, match=r"title must be a string, or a table with one title per language"):
        agreement_mod.load(
            plain.replace('title = "Foreign Secretary, Ministry of Foreign Affairs, Islamabad"', "title = 7")
        )


def test_hash_ignores_formatting_but_not_values() -> None:
    base = agreement_mod.load(text()).hash
    assert agreement_mod.load("# a comment\n" + text()).hash == base
    assert agreement_mod.load(text().replace("link_test_seconds = 3600", "link_test_seconds = 60")).hash != base


def test_deadline_overrides() -> None:
    doc = agreement_mod.load(text() + "\n[channels.dgmo.deadlines]\nFLASH = 300\n")
    assert doc.deadlines("dgmo")[Precedence.FLASH].total_seconds() == 300
    assert doc.deadlines("node") == {}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('alternate = "pk:fs"', 'alternate = "ir:fs"', "another office of the same party"),
        ('alternate = "pk:fs"', 'alternate = "pk:dgmo"', "another office of the same party"),
        ('offices = ["pk:dgmo", "ir:dgmo"]', 'offices = ["pk:dgmo", "pk:fs"]', "two different parties"),
        ('offices = ["pk:dgmo", "ir:dgmo"]', 'offices = ["pk:dgmo", "ir:navy"]', "unknown office"),
        ('offices = ["pk:dgmo", "ir:dgmo"]', 'offices = ["pk:dgmo"]', "two offices"),
        ('utc_offset = "+05:00"', 'utc_offset = "5h"', "utc_offset"),
        ("link_test_seconds = 3600", "link_test_seconds = 0", "link_test_seconds"),
        ("[channels.fs]", "[channels.node]", "reserved"),
        ('[offices."pk:fs"]', '[offices."xx:fs"]', "no party 'xx'"),
        ('[offices."pk:fs"]', '[offices."pk:node"]', "reserved"),
        ('id = "pk-ir-2024"', "id = 2024", "'id' must be a str"),
        # Shapes no rule foresaw are refused plainly too, never a TypeError for the user to read.
        ('languages = ["en", "ur", "fa"]', "languages = 5", "languages must be a list"),
        ('precedence = "IMMEDIATE"', "precedence = []", "wrong type or shape"),
    ],
)
def test_rule_violations_are_named(old: str, new: str, message: str) -> None:
    assert old in text()
    with pytest.raises(Invalid, match=message):
        agreement_mod.load(text().replace(old, new, 1))


def test_keys_urls_and_fingerprints_are_checked() -> None:
    good = Signer.generate("pk.detente/log").verifier.vkey()
    wrong_name = Signer.generate("ir.detente/log").verifier.vkey()
    section = '[parties.pk]\nname = "Islamic Republic of Pakistan"\nutc_offset = "+05:00"\nurl = ""\nvkey = ""'
    assert section in text()
    ok = text().replace(section, section.replace('vkey = ""', f'vkey = "{good}"'))
    assert agreement_mod.load(ok).parties["pk"].verifier().vkey() == good
    with pytest.raises(Invalid, match="key name"):
        agreement_mod.load(text().replace(section, section.replace('vkey = ""', f'vkey = "{wrong_name}"')))
    with pytest.raises(MalformedError, match=r"^\[parties\.pk\]: malformed verifier key"):
        agreement_mod.load(text().replace(section, section.replace('vkey = ""', 'vkey = "garbage"')))
    with pytest.raises(Invalid, match="https"):
        agreement_mod.load(text().replace(section, section.replace('url = ""', 'url = "http://x"')))


def test_not_toml_and_dates() -> None:
    with pytest.raises(MalformedError):
        agreement_mod.load("[agreement\n")
    with pytest.raises(Invalid, match="dates must be strings"):
        agreement_mod.load(text() + "\n[extra]\nsigned = 2024-01-29\n")


def test_lookups_raise_named_errors() -> None:
    doc = agreement_mod.load(text())
    with pytest.raises(Invalid, match="unknown office"):
        doc.office("pk:navy")
    with pytest.raises(Invalid, match="unknown channel"):
        doc.channel("navy")
    with pytest.raises(Invalid, match="unknown party"):
        doc.party("in")
    with pytest.raises(Invalid, match="pins no key"):
        doc.party("pk").verifier()
