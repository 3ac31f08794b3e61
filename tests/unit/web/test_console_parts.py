"""The console's pure parts: session cookies, rate limits, CSRF tokens, generated forms, catalogs, times."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from detente.core import agreement as agreement_mod
from detente.core import notifications
from detente.core.workflow_base import Step
from detente.core.workflows import Action, Consultation
from detente.core.workflows_action import ActionStatus
from detente.core.workflows_consultation import Item
from detente.errors import Invalid
from detente.web.console import compose_workflow, csrf, forms
from detente.web.console.i18n import LANGUAGES, TRANSLATIONS, Locale, Zone, from_accept_language, pick, stamp
from detente.web.console.sessions import ABSOLUTE, IDLE, RateLimiter, Sessions, Signer, load_key

KEY = b"k" * 32
ROOT = Path(__file__).resolve().parents[3]


def sessions() -> Sessions:
    return Sessions(Signer(KEY), "pk")


def test_session_cookie_round_trips_and_names_its_party() -> None:
    jar = sessions()
    session = jar.issue("op-1", "$argon2id$hash", now=1_000)
    assert jar.cookie == "__Host-detente-pk"
    assert jar.decode(jar.encode(session), now=1_001) == session


@pytest.mark.parametrize("part", ["payload", "mac"])
def test_a_tampered_session_cookie_is_refused(part: str) -> None:
    jar = sessions()
    payload, mac = jar.encode(jar.issue("op-1", "h", now=1_000)).split(".")
    if part == "payload":
        payload = ("B" if payload[3] != "B" else "C").join((payload[:3], payload[4:]))
    else:
        mac = ("B" if mac[3] != "B" else "C").join((mac[:3], mac[4:]))
    assert jar.decode(f"{payload}.{mac}", now=1_001) is None
    assert jar.decode("", now=1_001) is None and jar.decode("no-dot", now=1_001) is None


def test_a_cookie_signed_with_another_nodes_key_is_refused() -> None:
    other = Sessions(Signer(b"x" * 32), "pk")
    assert sessions().decode(other.encode(other.issue("op-1", "h", now=1_000)), now=1_001) is None


def test_sessions_end_when_idle_or_too_old_and_slide_while_used() -> None:
    jar = sessions()
    session = jar.issue("op-1", "h", now=0)
    assert jar.decode(jar.encode(session), now=IDLE + 1) is None
    touched = jar.touch(session, now=IDLE - 10)
    assert touched is not None and jar.decode(jar.encode(touched), now=IDLE + 1) == touched
    assert jar.touch(session, now=10) is None  # refreshed at most once a minute
    assert jar.decode(jar.encode(touched), now=ABSOLUTE + 1) is None


def test_logout_revokes_the_session_on_this_node() -> None:
    jar = sessions()
    session = jar.issue("op-1", "h")
    jar.revoke(session)
    assert jar.decode(jar.encode(session)) is None


def test_a_new_password_changes_the_fingerprint() -> None:
    signer = Signer(KEY)
    assert signer.password_fingerprint("a") != signer.password_fingerprint("b")
    assert signer.password_fingerprint("a") == signer.password_fingerprint("a")


def test_the_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    assert len(key) == 32 and load_key(tmp_path) == key
    assert (tmp_path / "console.key").stat().st_mode & 0o777 == 0o600


def test_rate_limiter_blocks_after_the_limit_until_the_window_slides() -> None:
    limiter = RateLimiter(3, 60)
    for t in range(3):
        assert limiter.blocked("name:a", now=t) == 0
        limiter.fail("name:a", now=t)
    assert limiter.blocked("name:a", now=3) == pytest.approx(57)
    assert limiter.blocked("name:b", now=3) == 0
    assert limiter.blocked("name:a", now=61) == 0
    limiter.fail("name:a", now=61)
    limiter.reset("name:a")
    assert limiter.blocked("name:a", now=62) == 0


def test_csrf_tokens_are_bound_to_their_session_or_pre_login_cookie() -> None:
    signer, jar = Signer(KEY), sessions()
    one, two = jar.issue("op", "h"), jar.issue("op", "h")
    token = csrf.session_token(signer, one)
    assert csrf.check_session_token(signer, one, token)
    assert not csrf.check_session_token(signer, two, token)
    assert not csrf.check_session_token(signer, one, None) and not csrf.check_session_token(signer, one, "")
    login = csrf.login_token(signer, "pre")
    assert csrf.check_login_token(signer, "pre", login)
    assert not csrf.check_login_token(signer, "other", login) and not csrf.check_login_token(signer, None, login)


def incident_fields() -> list[forms.FormField]:
    return forms.fields_for(notifications.CATALOG["incident.report"].json_schema())


def test_fields_follow_the_schema_with_groups_and_required_flags() -> None:
    fields = {f.path: f for f in incident_fields()}
    assert fields["location"].group and fields["location"].required
    assert fields["location.lat"].kind == "number" and fields["location.lat"].maximum == 90
    assert fields["casualties.killed"].kind == "integer" and not fields["casualties.killed"].required
    assert fields["kind"].kind == "select" and "strike" in fields["kind"].options
    assert fields["time"].kind == "datetime" and fields["description"].kind == "textarea"
    request = forms.fields_for(notifications.CATALOG["clarification.request"].json_schema())
    assert [(f.path, f.kind) for f in request] == [("questions", "lines"), ("deadline", "datetime")]
    prenotify = {f.path: f for f in forms.fields_for(notifications.CATALOG["operation.prenotify"].json_schema())}
    assert prenotify["area.polygon"].kind == "points" and not prenotify["area.center"].required


def test_form_values_become_the_body_and_bad_numbers_are_left_for_the_node_to_judge() -> None:
    form = {
        "b.kind": "strike", "b.time": "2024-01-16T13:05", "b.location.lat": "26.9", "b.location.lon": "abc",
        "b.location.place": " Panjgur ", "b.description": "Fire\nat the post  ", "b.casualties.killed": "2",
        "b.casualties.injured": "", "b.assessment": "x", "b.escalation": "3.0", "csrf": "t",
    }  # fmt: skip
    body = forms.body_from_form(incident_fields(), form)
    assert body == {
        "kind": "strike", "time": "2024-01-16T13:05:00Z", "location": {"lat": 26.9, "lon": "abc", "place": "Panjgur"},
        "description": "Fire\nat the post", "casualties": {"killed": 2}, "assessment": "x", "escalation": 3,
    }  # fmt: skip
    assert forms.values_of(form)["location.place"] == " Panjgur "


def test_lines_points_and_json_inputs() -> None:
    assert forms.convert("lines", "a\n\n b \n") == ["a", "b"]
    assert forms.convert("points", "26.9, 62.6\n27 63\nnowhere") == [
        {"lat": 26.9, "lon": 62.6}, {"lat": 27.0, "lon": 63.0}, "nowhere",
    ]  # fmt: skip
    assert forms.convert("json", '{"a": 1}') == {"a": 1} and forms.convert("json", "{bad") == "{bad"
    assert forms.utc_time("2024-01-16T13:05:09") == "2024-01-16T13:05:09Z"
    assert forms.utc_time("2024-01-16T13:05:00Z") == "2024-01-16T13:05:00Z"
    assert forms.utc_time(" 2024-01-16 13:05 ") == "2024-01-16T13:05:00Z" and forms.utc_time("13:05") == "13:05"


def test_the_nodes_field_errors_land_on_their_inputs() -> None:
    paths = [f.path for f in incident_fields()]
    placed, rest = forms.place_errors(
        paths, {"location.lat": "too big", "body.kind": "bad", "location": "missing", "casualties.killed.x": "no",
                "refs": "needs one"},
    )  # fmt: skip
    assert placed == {"location.lat": "too big", "kind": "bad", "location": "missing", "casualties.killed": "no"}
    assert rest == ["refs: needs one"]
    clarification = ["questions", "deadline"]
    assert forms.place_errors(clarification, {"questions.0": "blank"}) == ({"questions": "blank"}, [])


def test_the_node_refuses_what_the_form_passes_on_as_text() -> None:
    agreement = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
    body = forms.body_from_form(incident_fields(), {"b.location.lat": "95", "b.location.lon": "east"})
    with pytest.raises(Invalid) as caught:
        notifications.validate_body("incident.report", body, agreement)
    fields = caught.value.extra["fields"]
    assert "less than or equal to 90" in fields["location.lat"] and "location.lon" in fields


def test_code_params_are_typed_by_the_codebook() -> None:
    kinds = {"place": "text", "killed": "int", "radius_km": "number", "time": "time"}
    form = {"p.place": "Saravan", "p.killed": "3", "p.radius_km": "2.5", "p.time": "2024-01-18T01:00"}
    assert forms.code_params(kinds, form) == {"place": "Saravan", "killed": 3, "radius_km": 2.5,
                                              "time": "2024-01-18T01:00:00Z"}  # fmt: skip


def test_languages_are_negotiated_and_rtl_is_known() -> None:
    assert pick("xx", None, "fa") == "fa" and pick(None) == "en"
    assert from_accept_language("de-DE,ur-PK;q=0.8,en;q=0.5") == "ur"
    assert Locale("ur").dir == "rtl" and Locale("fa").dir == "rtl" and Locale("en").dir == "ltr"


def test_a_time_is_shown_in_utc_with_local_time_dtg_and_solar_hijri_in_persian() -> None:
    zones = (Zone("ir", timedelta(hours=3, minutes=30)), Zone("pk", timedelta(hours=5)))
    shown = stamp("2024-01-16T13:05:00.000Z", zones, Locale("fa"))
    assert shown is not None
    assert shown.utc == "2024-01-16 13:05:00Z" and shown.dtg == "161305ZJAN24"
    assert shown.local == (("IR UTC+03:30", "2024-01-16 16:35"), ("PK UTC+05:00", "2024-01-16 18:05"))
    assert shown.hijri == "26 دی 1402"
    english = stamp("2024-01-16T13:05:00Z", zones, Locale("en"))
    assert english is not None and english.hijri == ""
    assert stamp(None, zones, Locale("en")) is None and stamp("yesterday", zones, Locale("en")) is None


@pytest.mark.parametrize("lang", [x for x in LANGUAGES if x != "en"])
def test_each_catalog_is_complete_compiled_and_keeps_placeholders(lang: str) -> None:
    folder = TRANSLATIONS / lang / "LC_MESSAGES"
    with (TRANSLATIONS / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    with (folder / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    compiled = read_mo(io.BytesIO((folder / "messages.mo").read_bytes()))
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        ids.discard(key)
        strings = [message.string] if isinstance(message.string, str) else list(message.string or ())
        assert all(strings), f"{lang}: {key!r} is not translated"
        for text in strings:
            for placeholder in ("%(n)d", "%(t)s", "%(who)s", "%(code)s", "%(party)s", "%(from)s", "%(by)s"):
                assert (placeholder in key) == (placeholder in text) or key.startswith("%(n)d"), (lang, key)
        assert compiled.get(message.id) is not None, f"{lang}: {key!r} missing from messages.mo: run scripts/i18n"
        expected = message.string if isinstance(message.string, str) else tuple(message.string or ())
        got = compiled[message.id].string or ()
        stale = f"{lang}: messages.mo is stale: run scripts/i18n"
        assert (got if isinstance(got, str) else tuple(got)) == expected, stale
    assert not ids, f"{lang}: messages.po lacks {sorted(ids)}: run scripts/i18n update"


def action_at(status: ActionStatus, notified: str, consented: str | None = None) -> Action:
    history = [Step("a", "operation.prenotify", "pk:dgmo", notified, "proposed")]
    if consented:
        history.append(Step("c", "action.consent", "ir:dgmo", consented, "consented"))
    return Action(id="a", case=None, proposer="pk:dgmo", counterpart="ir:dgmo", created=notified,
                  window_start="2026-11-29T12:00:00.000Z", window_end="2026-11-29T14:00:00.000Z", respond_by=None,
                  target_group="BLF", status=status, history=tuple(history))  # fmt: skip


def test_an_executions_start_is_prefilled_to_the_second_never_before_the_consent_or_the_notice() -> None:
    """QA: the start was prefilled to the minute, 11:36, before a consent given at 11:36:46: unilateral."""
    consented = action_at("consented", "2026-11-28T11:30:00.000Z", "2026-11-28T11:36:46.123Z")
    same_minute = datetime(2026, 11, 28, 11, 36, 46, 500_000, tzinfo=UTC)
    assert compose_workflow.execution_start(consented, same_minute) == datetime(2026, 11, 28, 11, 36, 47, tzinfo=UTC)
    later = datetime(2026, 11, 28, 11, 36, 54, 900_000, tzinfo=UTC)
    assert compose_workflow.execution_start(consented, later) == datetime(2026, 11, 28, 11, 36, 54, tzinfo=UTC)
    assert compose_workflow.reasons_for(consented, "2026-11-28T11:36:47.000Z") == ""
    assert compose_workflow.reasons_for(consented, "2026-11-28T11:36:00.000Z") == "executed before consent was given"
    assert compose_workflow.reasons_for(consented, "not a time") == ""  # the node says what is wrong with it
    proposed = action_at("proposed", "2026-11-28T11:36:54.300Z")
    assert compose_workflow.execution_start(proposed, later) == datetime(2026, 11, 28, 11, 36, 55, tzinfo=UTC)
    assert compose_workflow.reasons_for(proposed, "2026-11-28T11:36:54.000Z") == (
        "executed without consent; executed before it was notified"
    )


def test_an_item_done_offers_the_open_items_of_this_side_by_id_and_text() -> None:
    """QA: the item of an `action item done` was typed by hand; it is a choice of the open items, as owners are."""
    due = "2026-12-01T06:00:00.000Z"
    items = (Item("A1", "Post a liaison officer at Turbat", "ir:lo-turbat", due),
             Item("A2", "Share patrol schedules", "pk:dgmo", due),
             Item("A3", "گشت‌ها را هماهنگ کنید", "pk:fs", due),
             Item("A4", "Brief the ministers", "pk:fs", due, status="done"))  # fmt: skip
    consultation = Consultation(id="c", case=None, proposer="pk:dgmo", counterpart="ir:dgmo", created=due,
                                title="Review", schedule=None, start=due, venue="Taftan", agenda=(),
                                status="minutes_cosigned", items=items)  # fmt: skip
    assert compose_workflow.open_items(consultation, "pk") == {
        "A2": "A2 · Share patrol schedules · pk:dgmo", "A3": "A3 · گشت‌ها را هماهنگ کنید · pk:fs",
    }  # fmt: skip
    assert compose_workflow.open_items(consultation, "ir", rtl=True) == {
        "A1": "A1 · \u2068Post a liaison officer at Turbat\u2069 · ir:lo-turbat"
    }
    # A side that owns no open item sees them all: the node says whose each is.
    assert list(compose_workflow.open_items(consultation, "af")) == ["A1", "A2", "A3"]
