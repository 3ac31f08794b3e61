"""Federation wire formats: signed requests and signed receipts.

Every federation request carries four headers:

    Detente-Party:        the sending party's id
    Detente-Time:         Unix seconds; refused outside ±5 minutes of the receiver's clock
    Detente-Signature:    base64 Ed25519, by the party's pinned node key, over
                          "detente-request/v1\\n" METHOD "\\n" PATH "\\n" TIME "\\n"
                          hex(SHA-256(body)) "\\n" AGREEMENT-HASH "\\n"
    Detente-Ratification: base64 Ed25519 over "detente-ratify/v1\\n" AGREEMENT-HASH "\\n"

so a receiver knows who sent the request, that it is fresh, that nobody altered it, and that the
sender has ratified the same agreement, from the request alone. The receipts a delivery returns are
in `core.receipts`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

from detente.core import clocks
from detente.core.agreement import Agreement
from detente.core.keys import Signer
from detente.errors import ClockSkew, Forbidden, NotRatified, Unauthorized

MAX_SKEW_SECONDS = 300
# Said with every refused ratification: after an amendment it is what the two technicians must do.
_AMENDED = " (the one this node serves under: after an amendment, every node must ratify the same one and restart)"
REQUEST_LABEL = b"detente-request/v1\n"
# In a group of states (three parties or more) a request's signature also covers the party it is
# for and its query: else the party that received it could replay it, within the clock window, to
# a third, which would answer it as the sender's (red team). Between two parties there is no third
# to replay to, and nodes of an earlier release verify version 1 only: a pair keeps it.
REQUEST_LABEL_GROUP = b"detente-request/v2\n"
# What a node takes that the first release did not, named in a header on each of its federation
# answers. A peer of an earlier release refuses an envelope it cannot read, and a refused envelope
# holds its channel (FLASH included) until that peer upgrades: so a sender must not queue one.
ACCEPTS_HEADER = "detente-accepts"
ANSWER_OFFICE = "answer-office"  # an ack or decline whose body names the alternate that answered
TRANSLATION = "translation"  # `translation` and `translation.review` envelopes
ACCEPTS = (ANSWER_OFFICE, TRANSLATION)


def parse_accepts(value: str | None) -> frozenset[str]:
    """Return the features a peer's `detente-accepts` header names (none: an earlier release).

    Names this release does not know are kept: a later release may name more. Raises nothing.
    """
    return frozenset((value or "").split())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized(f"{what} is not base64") from exc


def request_message(
    method: str, path: str, timestamp: int, body: bytes, agreement_hash: str,
    recipient: str | None = None, query: Iterable[tuple[str, str]] = (),
) -> bytes:  # fmt: skip
    """Return the bytes a federation request's signature covers: version 1, or with `recipient`
    version 2, which adds the party the request is for and its query (sorted, URL-encoded)."""
    digest = hashlib.sha256(body).hexdigest()
    if recipient is None:
        return REQUEST_LABEL + f"{method.upper()}\n{path}\n{timestamp}\n{digest}\n{agreement_hash}\n".encode()
    fields = (method.upper(), path, urlencode(sorted(query)), recipient, str(timestamp), digest, agreement_hash)
    return REQUEST_LABEL_GROUP + "".join(f"{field}\n" for field in fields).encode()


def _recipient_bound(agreement: Agreement, recipient: str) -> str | None:
    """Return `recipient` if the agreement's requests name theirs (a group of states), else None."""
    return recipient if len(agreement.parties) > 2 else None


def ratify(agreement: Agreement, signer: Signer) -> str:
    """Return this node's ratification signature of the agreement (base64)."""
    return _b64(signer.sign(agreement.ratification_message()))


_RATIFIED: set[tuple[str, str, str]] = set()  # (agreement hash, party, signature) already checked


def check_ratification(agreement: Agreement, party: str, signature: str) -> None:
    """Check a party's ratification signature. Raises `NotRatified` if it is not valid.

    Every federation request and response carries one; a good one is remembered, so that the same
    signature is not verified again on each round trip.
    """
    key = (agreement.hash, party, signature)
    if key in _RATIFIED:
        return
    try:
        sig = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise NotRatified(f"party {party!r} has not ratified agreement {agreement.hash[:12]}…{_AMENDED}") from None
    if not agreement.party(party).verifier().verify(sig, agreement.ratification_message()):
        raise NotRatified(f"party {party!r} has not ratified agreement {agreement.hash[:12]}…{_AMENDED}")
    if len(_RATIFIED) > 1024:
        _RATIFIED.clear()
    _RATIFIED.add(key)


def sign_request(
    signer: Signer,
    party: str,
    ratification: str,
    agreement: Agreement,
    method: str,
    path: str,
    body: bytes,
    now: int,
    recipient: str,
    query: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    """Return the headers that authenticate a federation request to `recipient` (with `query`)."""
    message = request_message(method, path, now, body, agreement.hash, _recipient_bound(agreement, recipient), query)
    return {
        "Detente-Party": party,
        "Detente-Time": str(now),
        "Detente-Signature": _b64(signer.sign(message)),
        "Detente-Ratification": ratification,
    }


def verify_request(
    agreement: Agreement,
    own_party: str,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    now: int,
    query: Iterable[tuple[str, str]] = (),
) -> str:
    """Check a federation request's headers (for `own_party`, with `query`) and return the sending party.

    Raises `Unauthorized` for a missing, stale or bad signature, `Forbidden` for an unknown party,
    and `NotRatified` if the sender has not ratified the agreement in force.
    """
    party = headers.get("detente-party", "")
    stamp = headers.get("detente-time", "")
    signature = headers.get("detente-signature", "")
    ratification = headers.get("detente-ratification", "")
    if not party or not stamp or not signature or not ratification:
        raise Unauthorized("federation request is not signed")
    if party == own_party or party not in agreement.parties:
        raise Forbidden(f"unknown node {party!r}")
    if not stamp.isdigit() or len(stamp) > 12:
        raise Unauthorized("Detente-Time must be Unix seconds")
    verifier = agreement.party(party).verifier()
    sig = _unb64(signature, "Detente-Signature")
    message = request_message(
        method, path, int(stamp), body, agreement.hash, _recipient_bound(agreement, own_party), query
    )
    if not verifier.verify(sig, message):
        raise Unauthorized("federation request signature does not verify")
    # Checked after the signature, so that the offset a refusal reports is the peer's own word.
    offset = int(stamp) - now
    if abs(offset) > MAX_SKEW_SECONDS:
        raise ClockSkew(
            f"{party}'s clock is {clocks.amount(offset)} {'ahead of' if offset > 0 else 'behind'} {own_party}'s "
            f"(requests are accepted within ±{MAX_SKEW_SECONDS} s): set both nodes' clocks by NTP",
            offset,
        )
    check_ratification(agreement, party, ratification)
    return party
