"""The compose panel of a channel: the type's generated form, precedence, case, refs, and the codebook.

A message is sent through the operator API's own function (`api.send_message`), so the console
checks nothing the API would not and the API's errors, with their `fields`, come back to the form,
each worded as a plain sentence naming its field (`form_errors.explain_errors`). What the workflow
a reply moves tells the officer (consent to an operation, the minutes being co-signed) is put on the
panel by `compose_workflow`; an execution the record will flag unilateral waits for the officer to
confirm it, and nothing is sent until then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from detente.core import codebook as codebook_mod
from detente.core import notifications
from detente.core.agreement import Agreement, Channel
from detente.core.precedence import Precedence
from detente.errors import Error, Invalid
from detente.web import api
from detente.web.console import compose_workflow, form_errors, forms
from detente.web.console.forms import FormField
from detente.web.console.i18n import AUTONYMS
from detente.web.console.site import Viewer

DEFAULT_TYPE = "hotline.text"
CODE_TYPE = "code"
NOW_FIELDS = frozenset({"time", "started", "held_at"})


@dataclass(frozen=True)
class CodeView:
    """A codebook entry as a button: its parameters and its text in every language."""

    code: str
    params: tuple[tuple[str, str], ...]  # (name, kind)
    precedence: str
    texts: tuple[tuple[str, str, str], ...]  # (lang, autonym, template), the viewer's language first


@dataclass
class Compose:
    """Everything the compose panel shows, including what was typed and what the node objected to."""

    type: str
    types: list[tuple[str, str]]
    precedences: list[str]
    precedence: str
    fields: list[FormField]
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    case: str = ""
    refs: str = ""
    codes: list[CodeView] = field(default_factory=list)
    code_errors: dict[str, str] = field(default_factory=dict)
    code_values: dict[str, str] = field(default_factory=dict)
    code_note: str = ""  # the note typed with a codebook message the node refused, to show again
    failed_code: str = ""
    # The language the text is written in, signed in the envelope: the reader's to start with (the
    # page's, or their own where the console has no pages in it), which an officer reading in
    # English but writing in Urdu changes.
    lang: str = ""
    languages: list[tuple[str, str]] = field(default_factory=list)
    execute: compose_workflow.ExecuteView | None = None  # the operation an `action.execute` records
    minutes: compose_workflow.MinutesView | None = None  # the minutes a `consultation.cosign` signs
    confirm: str = ""  # the reasons the record will give for an execution the officer has yet to confirm
    status: int = 422  # of the page shown again when nothing was sent: 200 when a row was only added


def channel_types(agreement: Agreement, channel: Channel) -> list[str]:
    """Return the types an operator may compose on a channel (not service types, not `code`)."""
    names = channel.types if channel.types is not None else tuple(notifications.CATALOG)
    return [n for n in names if n in notifications.CATALOG and not notifications.CATALOG[n].service
            and n != CODE_TYPE]  # fmt: skip


def codes(agreement: Agreement, channel: Channel, lang: str) -> list[CodeView]:
    """Return the codebook entries usable on the channel (none if it does not carry `code`)."""
    if channel.types is not None and CODE_TYPE not in channel.types:
        return []
    try:
        entries = codebook_mod.codebook(agreement.raw)
    except Error:
        return []
    out = []
    for entry in entries.values():
        langs = sorted(entry.text, key=lambda x: (x != lang, agreement.languages.index(x)
                                                     if x in agreement.languages else 99))  # fmt: skip
        out.append(
            CodeView(
                code=entry.code,
                params=tuple(entry.params.items()),
                precedence=(entry.precedence or Precedence.IMMEDIATE).value,
                texts=tuple((x, AUTONYMS.get(x, x), entry.text[x]) for x in langs),
            )
        )
    return out


def compose_for(
    viewer: Viewer, channel: Channel, kind: str | None, precedence: str | None = None, **extra: Any
) -> Compose:
    """Return the compose panel for `kind` (the default type if unknown or not carried here)."""
    agreement = viewer.presenter.agreement
    allowed = channel_types(agreement, channel)
    chosen = kind if kind in allowed else (DEFAULT_TYPE if DEFAULT_TYPE in allowed else allowed[0])
    spec = notifications.CATALOG[chosen]
    precedences = [p.value for p in Precedence if p in spec.precedences]
    pick = precedence if precedence in precedences else ("IMMEDIATE" if "IMMEDIATE" in precedences else precedences[0])
    labels = viewer.presenter.labels
    fields = forms.fields_for(spec.json_schema())
    if not extra.get("values"):
        # Times of what just happened start at now (UTC, to the second: cut to the minute, a time
        # can fall before what it follows, a consent received that minute); the officer corrects them.
        moment = datetime.now(UTC).strftime(compose_workflow.SECOND)
        extra["values"] = {f.path: moment for f in fields if f.kind == "datetime" and f.path in NOW_FIELDS}
    languages = [(code, AUTONYMS.get(code, code)) for code in agreement.languages]
    # The reader's language of texts: the page's, or their own where the console has no pages in it (as `send`).
    own = viewer.presenter.text_lang
    extra.setdefault("lang", own if own in agreement.languages else languages[0][0])
    return Compose(
        type=chosen,
        types=[(n, labels.type(n)) for n in allowed],
        precedences=precedences,
        precedence=pick,
        fields=fields,
        codes=codes(agreement, channel, own),
        languages=languages,
        **extra,
    )


def _refs(text: str) -> list[str]:
    return [r for r in text.replace(",", " ").split() if r]


async def compose_page(
    viewer: Viewer, node: Any, channel: Channel, kind: str | None, precedence: str | None, case: str, refs: str
) -> Compose:
    """Return the compose panel a page opens with: `compose_for`, with what the reply's workflow tells."""
    panel = compose_for(viewer, channel, kind, precedence, case=case, refs=refs)
    wanted = _refs(refs)
    context = await node.aread(lambda conn: compose_workflow.read(conn, viewer, panel.type, wanted))
    compose_workflow.fill(panel, context, viewer, prefill=True)
    return panel


async def send(viewer: Viewer, node: Any, channel: Channel, form: Mapping[str, str]) -> tuple[str | None, Compose]:
    """Send what the form describes; return (the new message id or None, the compose panel).

    On refusal the panel carries the typed values and the node's errors, each on its field.
    """
    party = viewer.presenter.party
    to = next(o for o in channel.offices if o.split(":", 1)[0] != party)
    kind = form.get("type", DEFAULT_TYPE)
    case = form.get("case", "").strip()
    refs = form.get("refs", "").strip()
    is_code = kind == CODE_TYPE
    lang = form.get("lang", "").strip()
    chosen = {"lang": lang} if lang and not is_code else {}
    panel = compose_for(
        viewer, channel, None if is_code else kind, form.get("precedence"), case=case, refs=refs, **chosen
    )
    if is_code:
        code = form.get("code", "")
        entry = codebook_mod.codebook(viewer.presenter.agreement.raw).get(code)
        params = forms.code_params(entry.params if entry else {}, form)
        body: dict[str, Any] = {"code": code, "params": params}
        if form.get("b.note", "").strip():
            body["note"] = form["b.note"].strip()
        panel.failed_code = code
        panel.code_values = {k[2:]: v for k, v in form.items() if k.startswith(forms.PARAM_PREFIX)}
        panel.code_note = form.get("b.note", "")
    else:
        context = await node.aread(lambda conn: compose_workflow.read(conn, viewer, panel.type, _refs(refs)))
        compose_workflow.fill(panel, context, viewer, prefill=False)
        form = forms.compact_rows(panel.fields, form)
        body = forms.body_from_form(panel.fields, form)
        panel.values = forms.values_of(form)
        grown = next((f for f in panel.fields if f.kind == "rows" and f.path == form.get("add_row")), None)
        if grown is not None and grown.typed_columns:
            # "Add a row" sends the form back with one more row, and sends nothing.
            row = forms.row_count(grown.path, panel.values)
            panel.values[f"{grown.path}.{row}.{grown.typed_columns[0].path}"] = ""
            panel.status = 200
            return None, panel
        panel.confirm = compose_workflow.needs_confirmation(
            panel, context, body, form.get(compose_workflow.CONFIRM_FIELD, "")
        )
        if panel.confirm:
            return None, panel
    try:
        request = api.SendRequest.model_validate(
            {"channel": channel.name, "to": to, "precedence": form.get("precedence", panel.precedence), "type": kind,
             "body": body, "refs": _refs(refs), "case": case or None, **({"lang": lang} if chosen else {})}
        )  # fmt: skip
        sent = await api.send_message(request, node, viewer.operator)
    except Invalid as exc:
        found = exc.extra.get("fields")
        fields: dict[str, str] = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
        if is_code:
            panel.code_errors = {"": form_errors.explain_code_errors(fields) if fields else exc.detail}
        else:
            placed, rest = form_errors.explain_errors(panel.fields, fields, panel.values)
            panel.errors = placed
            panel.general = rest or ([] if placed else [exc.detail])
        return None, panel
    except Error as exc:
        panel.general = [exc.detail]
        if is_code:
            panel.code_errors = {"": exc.detail}
        return None, panel
    except ValidationError as exc:  # the request itself: a precedence altered by hand, a case id too long
        said = [
            form_errors.member_sentence(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()
        ]
        panel.general = said
        if is_code:
            panel.code_errors = {"": " ".join(said)}
        return None, panel
    return str(sent["id"]), panel
