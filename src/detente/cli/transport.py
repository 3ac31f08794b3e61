"""How the command line reaches a node's operator API, and what it accepts as an answer.

Errors (the CLI's own branch of `detente.errors.Error`; each prints one line and exits 1):

    Error
    ├── ApiError           the node answered 4xx or 5xx: its own `{"error", "detail"}`
    └── UnexpectedAnswer   a redirect, an answer that is not JSON, or JSON of the wrong shape

`--url`, `--token` and `--cacert` are checked before anything is sent; what is wrong with them is a
usage error (exit 2) or, for a certificate file that is not one, `BadRequest` (exit 1, like any
file whose content is wrong). A URL's trailing `/api/v1` (the `api` entry of demo.json) is
dropped: `--url` is the node's base URL either way.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from detente.cli.arguments import language_tag
from detente.errors import BadRequest, Error, Unavailable
from detente.node.config import load_config
from detente.node.tls import trust_exactly

API = "/api/v1"

NodeOpt = Annotated[
    Path | None,
    typer.Option("--node", help="a node data directory (gives URL and certificate)", exists=True, file_okay=False),
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", envvar="DETENTE_URL", help="the node's base URL, e.g. https://host:8443")
]
CertOpt = Annotated[
    Path | None,
    typer.Option("--cacert", envvar="DETENTE_CACERT", help="the node's TLS certificate", exists=True, dir_okay=False),
]
TokenOpt = Annotated[str, typer.Option("--token", envvar="DETENTE_TOKEN", help="your API token")]


class ApiError(Error):
    """The node refused the request; `name` is its error (`Forbidden`), `status_code` the HTTP status."""

    def __init__(self, status: int, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name = name
        self.status_code = status

    def diagnostics(self) -> str:
        """Return the node's own words: `Forbidden: operator pk-fs is not bound to office pk:dgmo`."""
        return f"{self.name}: {self.detail}"


class UnexpectedAnswer(Error):
    """The node's answer is not one this command can use (a redirect, not JSON, the wrong shape)."""


def base_url(value: str) -> str:
    """Return the node's base URL from `--url` (without a trailing `/` or `/api/v1`).

    Raises `BadParameter` (a usage error) for anything but an `https://host[:port][/path]` URL.
    """

    def bad(problem: str) -> typer.BadParameter:
        return typer.BadParameter(
            f"{problem}; give the node's base URL, e.g. https://127.0.0.1:8443", param_hint="'--url'"
        )

    if not value.isprintable() or " " in value:
        raise bad("holds spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise bad(f"{value!r} is not an https:// URL")
    if "?" in value or "#" in value or parts.username is not None:
        raise bad("a query, a fragment or a user name has no place in it")
    try:
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError:
        raise bad("its port is not a number from 1 to 65535") from None
    path = parts.path.rstrip("/").removesuffix(API).rstrip("/")
    return f"https://{parts.netloc}{path}"


def check_token(token: str) -> str:
    """Return `token` if it can be an API token; raise `BadParameter` (a usage error) if not.

    The message never repeats the token: it is a secret.
    """
    if not token:
        raise typer.BadParameter("the token is empty (DETENTE_TOKEN may be set but empty)", param_hint="'--token'")
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise typer.BadParameter(
            "a token is printable ASCII without spaces, as `detente user add` printed it", param_hint="'--token'"
        )
    return token


def load_cacert(path: Path) -> ssl.SSLContext:
    """Return a TLS context trusting exactly the certificate in `path`.

    Raises `BadRequest` if the file cannot be read or holds no PEM certificate.
    """
    try:
        pem = path.read_bytes().decode("ascii")
        return trust_exactly(pem)
    except (UnicodeDecodeError, ssl.SSLError, ValueError) as exc:  # SSLError first: it is an OSError
        raise BadRequest(f"{path} is not a PEM certificate (the node's tls.crt)") from exc
    except OSError as exc:
        raise BadRequest(f"cannot read the certificate {path}: {exc.strerror or exc}") from exc


def api(node: Path | None, url: str | None, cacert: Path | None, token: str) -> httpx.Client:
    """Return an HTTPS client for a node's operator API, trusting exactly its certificate.

    Raises `BadParameter` for a bad `--url` or `--token` or no node at all, `BadRequest` for a
    certificate file that is not one, and what `load_config` raises for `--node`.
    """
    check_token(token)
    if node is not None:
        config = load_config(node)
        url, cacert = url or config.url, cacert or config.cert_path
    if not url:
        raise typer.BadParameter(
            "no node given: use --node DIR, or --url URL with --cacert FILE", param_hint="'--node'"
        )
    if cacert is None:
        raise typer.BadParameter(
            "--url needs the node's TLS certificate too (or DETENTE_CACERT)", param_hint="'--cacert'"
        )
    return httpx.Client(
        base_url=base_url(url) + API,
        verify=load_cacert(cacert),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def unreachable(client: httpx.Client, exc: httpx.HTTPError) -> Unavailable:
    """Return the `Unavailable` a request that could not reach the node is answered with."""
    return Unavailable(f"cannot reach the node at {client.base_url}: {exc}{_hint(exc)}")


def _hint(exc: httpx.HTTPError) -> str:
    """Return what a failure to reach the node most likely means, for the error line ("" if unsure)."""
    said = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in said or isinstance(exc.__context__, ssl.SSLCertVerificationError):
        return (
            " (the server there does not hold the certificate given: check that --cacert, or --node's "
            "tls.crt, is this node's, and that the URL is this node's)"
        )
    if isinstance(exc, httpx.ConnectError) and ("Connection refused" in said or "Errno 111" in said):
        return " (nothing listens there: is `detente serve` running for this node, on this address?)"
    return ""


def call(
    client: httpx.Client, method: str, path: str, *, expect: Mapping[str, type] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Send one API request and return its JSON object.

    `expect` maps keys the answer must hold to their type. Raises `ApiError` with the node's
    message for a 4xx or 5xx, `UnexpectedAnswer` for any other answer that is not a 2xx JSON
    object of that shape, `Unavailable` if the node cannot be reached.
    """
    request = f"{method} {API}{path}"
    try:
        response = client.request(method, path, **kwargs)
    except httpx.InvalidURL as exc:
        raise BadRequest(f"cannot build the request {request}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise unreachable(client, exc) from exc
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = None
    status = response.status_code
    if 300 <= status < 400:
        where = response.headers.get("location", "elsewhere")
        raise UnexpectedAnswer(
            f"the node answered {request} with {status} {response.reason_phrase} (to {where}), not an answer:"
            " check --url (the node's base URL) and the id"
        )
    if status >= 400:
        if isinstance(body, dict) and "error" in body:
            raise ApiError(status, str(body["error"]), str(body.get("detail", "")))
        raise UnexpectedAnswer(f"the node answered {request} with {status} {response.reason_phrase}")
    if not isinstance(body, dict):
        raise UnexpectedAnswer(f"the node's answer to {request} is not a JSON object: is --url the node's base URL?")
    return shape(body, expect or {}, f"the node's answer to {request}")


def agreement_languages(client: httpx.Client) -> list[str]:
    """Return the languages of the agreement in force on the node (`GET /codebook`). Raises what `call` raises."""
    book = call(client, "GET", "/codebook", expect={"languages": list})
    return [str(language) for language in book["languages"]]


def text_language(client: httpx.Client, value: str, option: str = "--lang") -> str:
    """Return the language tag `value` in the agreement's spelling (`arguments.language_tag`).

    Raises `BadParameter` for a blank value, naming the agreement's languages, which it asks the
    node for (a read: nothing changes), and what `call` raises if that fails.
    """
    return language_tag(value, lambda: agreement_languages(client), option)


def shape(value: Any, expect: Mapping[str, type], what: str) -> dict[str, Any]:
    """Return `value` if it is a JSON object whose `expect` keys hold their types; raise `UnexpectedAnswer` if not."""
    if not isinstance(value, dict):
        raise UnexpectedAnswer(f"{what} is not a JSON object")
    for key, kind in expect.items():
        # bool is an int to Python, never to JSON.
        if not isinstance(value.get(key), kind) or (kind is int and isinstance(value[key], bool)):
            raise UnexpectedAnswer(f"{what} has no {key!r} ({_JSON_NAMES.get(kind, kind.__name__)})")
    return value


_JSON_NAMES = {dict: "object", list: "list", str: "string", int: "integer", bool: "true or false"}
