"""The one error hierarchy of Détente, mapped to HTTP in one place (`web.errors`).

    Error                      500  something we did not expect (never shown with a traceback)
    ├── BadRequest             400  the request cannot be understood
    │   ├── MalformedError     400  a signed or structured input does not parse (flat message)
    │   └── TooLarge           413  a body over its limit
    ├── Unauthorized           401  no or bad credentials
    │   └── ClockSkew          401  a signed request from a peer whose clock is off ours beyond the tolerance
    ├── Forbidden              403  credentials fine, action not allowed for them
    │   └── NotRatified        403  the agreement is not ratified by every party
    ├── NotFound               404  no such object
    ├── Conflict               409  the request clashes with stored state
    │   └── SequenceGap        409  an envelope arrived ahead of the channel's next sequence number
    ├── Invalid                422  well-formed but breaks a rule (schema, channel, lead time, ...)
    │   ├── VerificationError  422  a signature or proof does not verify
    │   └── InvalidTransition  422  a workflow refuses an envelope in its current state
    ├── RateLimited            429  too many attempts
    └── Unavailable            503  a peer or a dependency cannot be reached

Every error carries a human `detail`; `diagnostics()` is what the CLI prints.
"""

from __future__ import annotations

from typing import Any, TypeVar


class Error(Exception):
    """Root of every error Détente raises on purpose."""

    status_code = 500

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.__class__.__doc__ or self.__class__.__name__)
        self.detail = detail or (self.__class__.__doc__ or "").strip().split("\n")[0]
        self.extra = extra

    def diagnostics(self) -> str:
        """Return the text shown to a person: the error's name and what went wrong."""
        return f"{type(self).__name__}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON body every API error is rendered as."""
        body: dict[str, Any] = {"error": type(self).__name__, "detail": self.detail}
        body.update(self.extra)
        return body


class BadRequest(Error):
    """The request cannot be understood."""

    status_code = 400


class MalformedError(BadRequest):
    """A signed or structured input does not parse."""


class TooLarge(BadRequest):
    """The body is larger than the limit."""

    status_code = 413


class Unauthorized(Error):
    """Missing or invalid credentials."""

    status_code = 401


class ClockSkew(Unauthorized):
    """A federation request signed correctly, but stamped too far from this node's clock.

    `offset` is the peer's clock minus ours, in seconds, as the request's time says (to a second).
    """

    def __init__(self, detail: str, offset: float) -> None:
        super().__init__(detail)
        self.offset = offset


class Forbidden(Error):
    """The action is not allowed for these credentials."""

    status_code = 403


class NotRatified(Forbidden):
    """The agreement has not been ratified by every party."""


class NotFound(Error):
    """No such object."""

    status_code = 404


class Conflict(Error):
    """The request clashes with what is stored."""

    status_code = 409


class SequenceGap(Conflict):
    """An envelope arrived ahead of the next expected sequence number of its channel."""

    def __init__(self, detail: str, *, channel: str, expected: int, got: int) -> None:
        super().__init__(detail, channel=channel, expected=expected, got=got)
        self.channel = channel
        self.expected = expected
        self.got = got


class Invalid(Error):
    """The input is well-formed but breaks a rule."""

    status_code = 422


class VerificationError(Invalid):
    """A signature or a proof does not verify."""


class InvalidTransition(Invalid):
    """A workflow refuses this envelope in its current state."""


class RateLimited(Error):
    """Too many attempts; try again later."""

    status_code = 429


class Unavailable(Error):
    """A peer or a dependency cannot be reached."""

    status_code = 503


class CommitInDoubt(Unavailable):
    """The database went away while a write was being committed: it may or may not be stored.

    Never run again by the node (the server may have committed it): the person who sent it looks
    for it first, and a peer's delivery is simply retried (it is idempotent).
    """


ErrorT = TypeVar("ErrorT", bound=Error)


def located(exc: ErrorT, path: str) -> ErrorT:
    """Say where in a request `exc` happened, and return it (changed in place).

    A batch request checks many items with the code that checks one; the item's error then reads
    `messages.3: <detail>`, its `fields` keys become `messages.3.<field>` (the form request
    validation uses), and `at` names the item.
    """
    exc.detail = f"{path}: {exc.detail}"
    exc.args = (exc.detail,)
    fields = exc.extra.get("fields")
    if isinstance(fields, dict):
        exc.extra["fields"] = {f"{path}.{key}": value for key, value in fields.items()}
    exc.extra["at"] = path
    return exc
