"""The agreement: the signed document that binds the parties.

It is a TOML file (see `agreements/pk-ir.toml`) with these tables:

    [agreement]  id, title, languages, link_test_seconds
    [parties.<id>]  name, utc_offset, url, vkey, tls_fingerprint
    [offices."<party>:<desk>"]  title (one string, or a table of one per language), alternate
    [channels.<name>]  offices = [a, b], types = [...], [channels.<name>.deadlines] FLASH = seconds
    [[codebook]] [lead_times] [response_deadlines] [consultations.<key>]   see `core.codebook`

Any other key, at any level, is refused (naming it, its table and the closest known key): a
misspelled key would otherwise be silently dropped, and every party would ratify a document that
says something other than what its authors meant (no alternate, no deadlines, a default link test).
An agreement ratified before this rule (`load(text, strict=False)`: the one in force, earlier
ones, an audit's) still loads, its unknown keys listed in `Agreement.ignored` for a warning: a
hotline must not stop serving over a key that has never had an effect.

Its hash is the SHA-256 of the RFC 8785 canonical JSON of the parsed document, so formatting and
comments do not change it, but any value does. Each party's node signs that hash (ratification);
nodes federate only under an agreement every party has ratified. Two channel names are reserved:
`node` (node-to-node service messages such as `status`) and `link` (link tests).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from detente.core import codebook, table_keys
from detente.core.bodies import is_blank
from detente.core.envelope import canonical
from detente.core.keys import Verifier, parse_vkey
from detente.core.precedence import Precedence
from detente.errors import Invalid, MalformedError

NODE_CHANNEL = "node"
LINK_CHANNEL = "link"
RESERVED_CHANNELS = (NODE_CHANNEL, LINK_CHANNEL)
RATIFY_LABEL = b"detente-ratify/v1\n"
_PARTY = re.compile(r"^[a-z]{2,8}$")
_OFFICE = re.compile(r"^([a-z]{2,8}):([a-z0-9][a-z0-9-]{0,31})$")
_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_OFFSET = re.compile(r"^[+-](\d{2}):(\d{2})$", re.ASCII)
# The keys each table may hold. The vocabulary tables (codebook entries, consultations, lead times,
# response deadlines) check their own keys in `core.codebook`; here they are only known top-level names.
TOP_KEYS = (
    "agreement", "parties", "offices", "channels", "codebook", "lead_times", "response_deadlines", "consultations",
)  # fmt: skip
AGREEMENT_KEYS = ("id", "title", "languages", "link_test_seconds")
PARTY_KEYS = ("name", "utc_offset", "url", "vkey", "tls_fingerprint")
OFFICE_KEYS = ("title", "alternate")
CHANNEL_KEYS = ("offices", "types", "deadlines")


@dataclass(frozen=True)
class Party:
    id: str
    name: str
    utc_offset: timedelta
    url: str
    vkey: str
    tls_fingerprint: str

    @property
    def node_office(self) -> str:
        """The pseudo-office that speaks for the node itself (link tests, status)."""
        return f"{self.id}:node"

    @property
    def log_origin(self) -> str:
        return f"{self.id}.detente/log"

    def verifier(self) -> Verifier:
        """Return the party's pinned node key. Raises `Invalid` if the agreement has none yet."""
        if not self.vkey:
            raise Invalid(f"the agreement pins no key for party {self.id!r} yet")
        return parse_vkey(self.vkey)


@dataclass(frozen=True)
class Office:
    id: str
    party: str
    title: str  # in English if the agreement gives it, else in its first language
    alternate: str | None
    titles: Mapping[str, str] = field(default_factory=dict)  # language -> title, when given per language

    def title_in(self, lang: str) -> str:
        """Return the office's title in `lang` if the agreement gives one, else `title`."""
        return self.titles.get(lang, self.title)


@dataclass(frozen=True)
class Channel:
    name: str
    offices: tuple[str, str]
    types: tuple[str, ...] | None
    deadlines: dict[Precedence, timedelta] = field(default_factory=dict)

    def other(self, office: str) -> str:
        """Return the office at the other end of the channel from `office`."""
        return self.offices[1] if office == self.offices[0] else self.offices[0]


@dataclass(frozen=True)
class Agreement:
    """A parsed and validated agreement."""

    raw: dict[str, Any]
    id: str
    title: str
    languages: tuple[str, ...]
    link_test_seconds: float
    parties: dict[str, Party]
    offices: dict[str, Office]
    channels: dict[str, Channel]
    hash: str
    # Keys no rule reads, in an agreement loaded with strict=False (each as `_known_keys` words it).
    ignored: tuple[str, ...] = ()

    def office(self, office_id: str) -> Office:
        """Return the office. Raises `Invalid` if the agreement names no such office."""
        try:
            return self.offices[office_id]
        except KeyError:
            raise Invalid(f"unknown office {office_id!r}") from None

    def channel(self, name: str) -> Channel:
        """Return the channel. Raises `Invalid` if the agreement names no such channel."""
        try:
            return self.channels[name]
        except KeyError:
            raise Invalid(f"unknown channel {name!r}") from None

    def party(self, party_id: str) -> Party:
        """Return the party. Raises `Invalid` if the agreement names no such party."""
        try:
            return self.parties[party_id]
        except KeyError:
            raise Invalid(f"unknown party {party_id!r}") from None

    def peers(self, party_id: str) -> list[Party]:
        """Return every party but `party_id`."""
        return [p for pid, p in sorted(self.parties.items()) if pid != party_id]

    def deadlines(self, channel: str) -> dict[Precedence, timedelta]:
        """Return the channel's deadline overrides (empty for reserved channels)."""
        chan = self.channels.get(channel)
        return dict(chan.deadlines) if chan else {}

    def alternates(self, office_id: str) -> list[str]:
        """Return the chain of alternates of an office, nearest first, without cycles."""
        chain: list[str] = []
        current = self.offices.get(office_id)
        while current and current.alternate and current.alternate not in chain:
            chain.append(current.alternate)
            current = self.offices.get(current.alternate)
        return chain

    def channels_of(self, office_id: str) -> list[Channel]:
        """Return the channels that have `office_id` at one end."""
        return [c for _, c in sorted(self.channels.items()) if office_id in c.offices]

    def is_complete(self) -> bool:
        """Return whether every party has its URL, key and TLS fingerprint filled in."""
        return all(p.url and p.vkey and p.tls_fingerprint for p in self.parties.values())

    def ratification_message(self) -> bytes:
        """Return the bytes a party's node signs to ratify this agreement."""
        return RATIFY_LABEL + self.hash.encode() + b"\n"


def _office_titles(value: Any, languages: tuple[str, ...], where: str) -> str | dict[str, str]:
    """Return an office's `title`: one string for every language, or a table of one per language.

    The table is read as a codebook entry's `text` is: every language of the agreement, no other.
    Raises `Invalid` for anything else, or a blank title.
    """
    if isinstance(value, str):
        if is_blank(value):
            raise Invalid(f"{where}: title must not be blank")
        return value
    if not isinstance(value, dict):
        raise Invalid(f"{where}: title must be a string, or a table with one title per language")
    codebook.every_language(value, languages, f"{where}: title")
    for lang in languages:
        if not isinstance(value[lang], str) or is_blank(value[lang]):
            raise Invalid(f"{where}: title.{lang} must be a non-empty string")
    return {lang: value[lang] for lang in languages}


def _need(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise Invalid(f"{where}: {key!r} must be a {kind.__name__}")
    return value


def _known_keys(table: Mapping[Any, Any], known: Collection[str], where: str, ignored: list[str] | None) -> None:
    """Refuse a table holding a key outside `known`, or, given an `ignored` list, add the refusal to it.

    Raises `Invalid` naming `where`, every unknown key (with the closest known one, if one is
    close) and the known keys.
    """
    refusal = table_keys.refusal(table, known, where)
    if refusal is None:
        return
    if ignored is None:
        raise Invalid(refusal)
    ignored.append(refusal)


def _offset(text: str, where: str) -> timedelta:
    match = _OFFSET.match(text)
    if not match:
        raise Invalid(f"{where}: utc_offset must look like '+05:00'")
    delta = timedelta(hours=int(match.group(1)), minutes=int(match.group(2)))
    return -delta if text.startswith("-") else delta


def load(text: str, *, strict: bool = True) -> Agreement:
    """Parse and validate an agreement from TOML text.

    Raises `MalformedError` if it is not TOML or holds a malformed vkey (naming its table), and
    `Invalid`, naming the table and key, for any rule it breaks. Not `strict` (an agreement already
    ratified), unknown keys are listed in `Agreement.ignored` instead.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MalformedError(f"agreement is not valid TOML: {exc}") from exc
    try:
        return from_dict(raw, strict=strict)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # The rules name the table and key they check; a value of a shape no rule foresaw (a
        # number where a list goes) must still be a plain refusal, never a traceback.
        raise Invalid(f"agreement holds a value of the wrong type or shape: {type(exc).__name__}: {exc}") from None


def from_dict(raw: dict[str, Any], *, strict: bool = True) -> Agreement:
    """Validate a decoded agreement document.

    Raises `Invalid` naming the first broken rule, an unknown key among them (with its table); not
    `strict`, unknown keys are listed in `Agreement.ignored` instead.
    """
    ignored: list[str] | None = None if strict else []
    try:
        digest = hashlib.sha256(canonical(raw)).hexdigest()
    except Invalid as exc:
        raise Invalid(f"agreement holds a value JSON cannot carry (dates must be strings): {exc}") from exc
    # Before the required tables: `[chanels]` is best named as the misspelling it is, not as "no channels".
    _known_keys(raw, TOP_KEYS, "agreement (top level)", ignored)
    head = _need(raw, "agreement", dict, "agreement")
    _known_keys(head, AGREEMENT_KEYS, "[agreement]", ignored)
    agreement_id = _need(head, "id", str, "[agreement]")
    title = str(head.get("title", agreement_id))
    listed = head.get("languages", ["en"])
    languages = tuple(listed) if isinstance(listed, list) else ()
    if not languages or not all(isinstance(x, str) and re.match(r"^[a-z]{2,3}$", x) for x in languages):
        raise Invalid("[agreement]: languages must be a list of language codes like 'en'")
    link_test = head.get("link_test_seconds", 3600)
    if not isinstance(link_test, int | float) or isinstance(link_test, bool) or not 0.2 <= link_test <= 86400:
        raise Invalid("[agreement]: link_test_seconds must be a number between 0.2 and 86400")

    parties: dict[str, Party] = {}
    for pid, table in _need(raw, "parties", dict, "agreement").items():
        where = f"[parties.{pid}]"
        if not _PARTY.match(pid) or not isinstance(table, dict):
            raise Invalid(f"{where}: party ids are 2-8 lowercase letters")
        _known_keys(table, PARTY_KEYS, where, ignored)
        vkey = str(table.get("vkey", ""))
        if vkey:
            try:
                verifier = parse_vkey(vkey)
            except MalformedError:
                raise MalformedError(f"{where}: malformed verifier key (vkey)") from None
            if verifier.name != f"{pid}.detente/log":
                raise Invalid(f"{where}: the key name must be '{pid}.detente/log'")
        fingerprint = str(table.get("tls_fingerprint", "")).lower().replace(":", "")
        if fingerprint and not _FINGERPRINT.match(fingerprint):
            raise Invalid(f"{where}: tls_fingerprint must be a hex SHA-256")
        url = str(table.get("url", ""))
        if url and not url.startswith("https://"):
            raise Invalid(f"{where}: url must start with https://")
        parties[pid] = Party(
            id=pid,
            name=_need(table, "name", str, where),
            utc_offset=_offset(str(table.get("utc_offset", "+00:00")), where),
            url=url.rstrip("/"),
            vkey=vkey,
            tls_fingerprint=fingerprint,
        )
    if len(parties) < 2:
        raise Invalid("[parties]: an agreement binds at least two parties")

    offices: dict[str, Office] = {}
    for oid, table in _need(raw, "offices", dict, "agreement").items():
        where = f'[offices."{oid}"]'
        match = _OFFICE.match(oid)
        if not match or not isinstance(table, dict):
            raise Invalid(f"{where}: office ids look like 'pk:dgmo'")
        _known_keys(table, OFFICE_KEYS, where, ignored)
        if match.group(1) not in parties:
            raise Invalid(f"{where}: no party {match.group(1)!r}")
        if match.group(2) == "node":
            raise Invalid(f"{where}: 'node' is reserved for the node itself")
        alternate = table.get("alternate")
        if alternate is not None and not isinstance(alternate, str):
            raise Invalid(f"{where}: alternate must be an office id")
        given = _office_titles(table.get("title", oid), languages, where)
        per_language = given if isinstance(given, dict) else {}
        title = given if isinstance(given, str) else given.get("en", given[languages[0]])
        offices[oid] = Office(oid, match.group(1), title, alternate, per_language)
    for office in offices.values():
        if office.alternate is not None:
            alt = offices.get(office.alternate)
            if alt is None or alt.party != office.party or alt.id == office.id:
                raise Invalid(
                    f'[offices."{office.id}"]: alternate {office.alternate!r} must be another office of the same party'
                )

    channels: dict[str, Channel] = {}
    for name, table in _need(raw, "channels", dict, "agreement").items():
        where = f"[channels.{name}]"
        if not _CHANNEL.match(name) or not isinstance(table, dict):
            raise Invalid(f"{where}: channel names are lowercase words")
        _known_keys(table, CHANNEL_KEYS, where, ignored)
        if name in RESERVED_CHANNELS:
            raise Invalid(f"{where}: {name!r} is reserved")
        ends = table.get("offices")
        if not isinstance(ends, list) or len(ends) != 2 or not all(isinstance(e, str) for e in ends):
            raise Invalid(f"{where}: offices must list the two offices it links")
        for end in ends:
            if end not in offices:
                raise Invalid(f"{where}: unknown office {end!r}")
        if offices[ends[0]].party == offices[ends[1]].party:
            raise Invalid(f"{where}: a channel links offices of two different parties")
        types = table.get("types")
        if types is not None and (not isinstance(types, list) or not all(isinstance(t, str) for t in types)):
            raise Invalid(f"{where}: types must be a list of message types")
        deadlines: dict[Precedence, timedelta] = {}
        overrides = dict(table.get("deadlines", {}))
        # Keyed by precedence: `FLAHS = 60` would otherwise leave FLASH at its default.
        _known_keys(overrides, [p.value for p in Precedence], f"{where}.deadlines", None)  # refused before too
        for prec, seconds in overrides.items():
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
                raise Invalid(f"{where}.deadlines: {prec} must be a positive number of seconds")
            deadlines[Precedence(prec)] = timedelta(seconds=seconds)
        channels[name] = Channel(name, (ends[0], ends[1]), tuple(types) if types else None, deadlines)

    # The vocabulary tables (codebook, lead times, response deadlines, consultations).
    codebook.validate_extensions(raw)
    return Agreement(
        raw=raw,
        id=agreement_id,
        title=title,
        languages=languages,
        link_test_seconds=float(link_test),
        parties=parties,
        offices=offices,
        channels=channels,
        hash=digest,
        ignored=tuple(ignored or ()),
    )
