"""Words the console shows for the system's own vocabulary: message types, field titles, states.

Each label is an English message id marked with `N_` so that Babel extracts it into the catalogs;
`Labels` translates it when a page is rendered. Anything without a label here (a type or field
added after these lines were written) is shown under its own name, humanised, in English.
Precedence names (FLASH ... ROUTINE) and date-time groups are procedure words, the same in every
language, and are never translated.
"""

from __future__ import annotations

from detente.web.console.i18n import N_, Locale

TYPES = {
    "hotline.text": N_("Hotline message"),
    "incident.report": N_("Incident report"),
    "clarification.request": N_("Request for clarification"),
    "clarification.response": N_("Clarification"),
    "operation.prenotify": N_("Advance notice of an operation"),
    "missile.prenotify": N_("Missile test notification"),
    "exercise.prenotify": N_("Exercise notification"),
    "intel.share": N_("Intelligence share"),
    "diplomatic.status": N_("Diplomatic status"),
    "deescalation.proposal": N_("De-escalation proposal"),
    "statement": N_("Statement"),
    "code": N_("Codebook message"),
    "case.open": N_("Open a case"),
    "case.update": N_("Case update"),
    "action.consent": N_("Consent to the operation"),
    "action.object": N_("Object to the operation"),
    "action.request_info": N_("Request information"),
    "action.provide_info": N_("Provide information"),
    "action.withdraw": N_("Withdraw the operation"),
    "action.execute": N_("Operation executed"),
    "action.report": N_("After-action report"),
    "action.verify": N_("Verify the report"),
    "action.dispute": N_("Dispute the report"),
    "consultation.propose": N_("Propose a consultation"),
    "consultation.agree": N_("Agree to the consultation"),
    "consultation.cancel": N_("Cancel the consultation"),
    "consultation.held": N_("Consultation held"),
    "consultation.minutes": N_("Minutes"),
    "consultation.cosign": N_("Co-sign the minutes"),
    "consultation.item_done": N_("Action item done"),
    "ack": N_("Acknowledgement"),
    "decline": N_("Declined"),
    "overdue": N_("Overdue"),
    "status": N_("Status"),
}

FIELDS = {
    "Agenda": N_("Agenda"), "Answers": N_("Answers (one per line)"), "Area": N_("Area"),
    "Assessment": N_("Assessment"), "Casualties": N_("Casualties"), "Center": N_("Centre"),
    "Code": N_("Code"), "Conditions": N_("Conditions"), "Confidence": N_("Confidence"),
    "Deadline": N_("Deadline (UTC)"), "Description": N_("Description"), "Domain": N_("Domain"), "Due": N_("Due (UTC)"),
    "End": N_("End (UTC)"), "Escalation": N_("Escalation level (0–5)"), "Event": N_("Event"),
    "Evidence": N_("Evidence"), "Forces": N_("Forces"), "Group": N_("Group"), "Held At": N_("Held at (UTC)"),
    "Impact area": N_("Impact area"), "Injured": N_("Injured"), "Item": N_("Item"), "Items": N_("Items"),
    "Killed": N_("Killed"), "Kind": N_("Kind"), "Lat": N_("Latitude"), "Launch site": N_("Launch site"),
    "Location": N_("Location"), "Lon": N_("Longitude"), "Measures": N_("Measures (one per line)"),
    "Missile": N_("Missile"), "Missing": N_("Missing"), "Name": N_("Name"), "Note": N_("Note"),
    "Objective": N_("Objective"), "Owner": N_("Owner office"), "Params": N_("Parameters"),
    "Participants": N_("Participants"),
    "Place": N_("Place"), "Polygon": N_("Polygon (one “lat, lon” per line)"),
    "Questions": N_("Questions (one per line)"), "Radius Km": N_("Radius (km)"), "Reason": N_("Reason"),
    "Respond By": N_("Respond by (UTC)"), "Schedule": N_("Schedule"), "Sha256": N_("SHA-256"),
    "Start": N_("Start (UTC)"), "Started": N_("Started (UTC)"), "Status": N_("Status"),
    "Summary": N_("Summary"), "Target Group": N_("Target group"), "Text": N_("Text"), "Time": N_("Time (UTC)"),
    "Title": N_("Title"), "Troops": N_("Troops"), "Valid Until": N_("Valid until (UTC)"), "Venue": N_("Venue"),
    "Window": N_("Window"),
}  # fmt: skip

VALUES = {
    "accidental_launch": N_("accidental launch"), "air": N_("air"), "airspace_violation": N_("airspace violation"),
    "ambassador_recalled": N_("ambassador recalled"), "ambassador_returned": N_("ambassador returned"),
    "border_crossing": N_("border crossing"), "combined": N_("combined"), "cross_border_fire": N_("cross-border fire"),
    "drone": N_("drone"), "engagements_resumed": N_("engagements resumed"),
    "engagements_suspended": N_("engagements suspended"), "high": N_("high"), "land": N_("land"), "low": N_("low"),
    "medium": N_("medium"), "naval": N_("naval"), "non_state_attack": N_("attack by a non-state group"),
    "other": N_("other"), "strike": N_("strike"),
    # message states, link states, case, action and consultation statuses
    "accepted": N_("accepted"), "delivered": N_("delivered"), "acknowledged": N_("acknowledged"),
    "declined": N_("declined"), "overdue": N_("overdue"), "verified": N_("verified"), "open": N_("open"),
    "contained": N_("contained"), "resolved": N_("resolved"), "proposed": N_("proposed"),
    "info_requested": N_("information requested"), "consented": N_("consented"), "objected": N_("objected"),
    "withdrawn": N_("withdrawn"), "executed": N_("executed"), "reported": N_("reported"), "disputed": N_("disputed"),
    "agreed": N_("agreed"), "cancelled": N_("cancelled"), "held": N_("held"),
    "minutes_proposed": N_("minutes proposed"), "minutes_cosigned": N_("minutes co-signed"), "answered": N_("answered"),
    "UP": N_("UP"), "DEGRADED": N_("DEGRADED"), "DOWN": N_("DOWN"),
    "operator": N_("operator"), "supervisor": N_("supervisor"), "translator": N_("translator"),
    "auditor": N_("auditor"), "admin": N_("admin"),
    "TECH": N_("technical fault"), "DECLINED": N_("declined to answer"),
    "AWAITING_AUTHORITY": N_("awaiting authority"), "BUSY": N_("busy"), "OK": N_("answering normally"),
}  # fmt: skip


# The kinds of codebook parameters, as the codebook form names them.
PARAM_KINDS = {"text": N_("text"), "int": N_("whole number"), "number": N_("number"), "time": N_("time, UTC"),
               "date": N_("date")}  # fmt: skip


def humanise(name: str) -> str:
    """Return a readable English name for an identifier: `target_group` -> `Target group`."""
    text = name.replace("_", " ").replace(".", " ").strip()
    return text[:1].upper() + text[1:]


class Labels:
    """Translated labels for one interface language."""

    def __init__(self, locale: Locale) -> None:
        self.locale = locale

    def type(self, name: str) -> str:
        """Return the name of a message type."""
        return self.locale.gettext(TYPES[name]) if name in TYPES else humanise(name)

    def field(self, title: str) -> str:
        """Return the label of a body field, from its schema title."""
        return self.locale.gettext(FIELDS[title]) if title in FIELDS else humanise(title)

    def param(self, name: str) -> str:
        """Return the label of a codebook parameter, as a body field of that name is labelled ("Radius (km)")."""
        return self.field(name.replace("_", " ").title())

    def param_kind(self, kind: str) -> str:
        """Return what a codebook parameter takes (`time`: "time, UTC"); an unknown kind as it is."""
        return self.locale.gettext(PARAM_KINDS[kind]) if kind in PARAM_KINDS else kind

    def value(self, value: object) -> str:
        """Return the word for an enumerated value or a state (unknown ones as they are)."""
        key = str(value)
        return self.locale.gettext(VALUES[key]) if key in VALUES else key
