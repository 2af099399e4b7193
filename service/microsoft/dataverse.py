"""Dataverse Web API client: read a contact, lead or account by id; add a note to a record's timeline.

An upstream like the marketing platforms: no web code, one ``requests.Session`` per process (rebuilt after a
fork), explicit (connect, read) timeouts on every call, the CA bundle trusted explicitly and the environment
not (``trust_env=False``), and only :mod:`service.microsoft.errors` leaves this module. The access token is
passed in per call (app or on-behalf-of: :mod:`service.microsoft.identity` decides); it is never logged.

Notes are created with a client-chosen ``annotationid``: writing the same note again (a retry after a lost
answer, a replay, a second worker) gets Dataverse's duplicate-key answer (412 / ``0x80040237``), which
:meth:`DataverseClient.create_note` reports as "already written" - so a note is written exactly once per id.
A 429 or 5xx is retried after ``Retry-After`` (or a short backoff) while the caller's deadline allows.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import requests

from service.microsoft import errors
from service.providers.http import HttpSettings, LazySession, parse_retry_after

log = logging.getLogger(__name__)

#: table (logical name) -> (entity set, primary key, attributes read for a record)
TABLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "contact": ("contacts", "contactid", ("emailaddress1", "firstname", "lastname", "fullname")),
    "lead": ("leads", "leadid", ("emailaddress1", "firstname", "lastname", "fullname", "companyname")),
    "account": ("accounts", "accountid", ("emailaddress1", "name")),
}
DUPLICATE_KEY = "0x80040237"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_NOTE_ATTEMPTS = 4
SUBJECT_MAX = 500
NOTETEXT_MAX = 100_000


@dataclass(frozen=True)
class DataverseConfig:
    url: str
    api_version: str = "9.2"
    ca_bundle: str | None = None
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    max_retries: int = 2
    retry_after_max: float = 5.0
    backoff: float = 0.5

    @property
    def resource(self) -> str:
        """What tokens are asked for (``https://org.crm4.dynamics.com``)."""
        return self.url.rstrip("/")

    @property
    def api_base(self) -> str:
        return f"{self.resource}/api/data/v{self.api_version}"


@dataclass(frozen=True)
class DataverseRecord:
    table: str
    record_id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    company: str | None = None


@dataclass(frozen=True)
class NoteWritten:
    note_id: str
    #: False when Dataverse already had a note with this id (written by an earlier attempt)
    created: bool
    attempts: int


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


class DataverseClient:
    """Thread-safe; one per process."""

    def __init__(self, config: DataverseConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self._session = LazySession("Dataverse", HttpSettings(
            connect_timeout=config.connect_timeout, read_timeout=config.read_timeout, max_retries=config.max_retries,
            retry_after_max=config.retry_after_max, backoff_factor=config.backoff, user_agent="marketing-actions"),
            headers={"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"},
            verify=config.ca_bundle or True)

    # -- transport --------------------------------------------------------------------------------------
    def _http(self) -> requests.Session:
        return self._session.get()

    def close(self) -> None:
        self._session.close()

    def _send(self, method: str, url: str, token: str, *, read_timeout: float | None = None,
              **kwargs: Any) -> requests.Response:
        cfg = self.config
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        timeout = (cfg.connect_timeout, cfg.read_timeout if read_timeout is None else max(0.05, read_timeout))
        try:
            resp = self._http().request(method, url, headers=headers, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            raise _transport_error(exc) from None
        if resp.status_code >= 400:
            raise _status_error(resp)
        return resp

    # -- records ----------------------------------------------------------------------------------------
    def get_record(self, table: str, record_id: str, token: str) -> DataverseRecord:
        """The record's e-mail address and name (``$select``). Raises DataverseNotFound when it does not exist."""
        entity_set, _, attributes = TABLES[table]
        if not _GUID.match(record_id):
            raise errors.DataverseRejected("The record id is not a GUID.", code="DATAVERSE_BAD_ID")
        url = f"{self.config.api_base}/{entity_set}({record_id})"
        resp = self._send("GET", url, token, params={"$select": ",".join(attributes)},
                          headers={"If-None-Match": "null"})
        try:
            doc = resp.json()
        except ValueError:
            raise errors.DataverseUnavailable("Dataverse answered with something that is not JSON.") from None
        if not isinstance(doc, dict):
            raise errors.DataverseUnavailable("Dataverse answered with something that is not a record.")
        return DataverseRecord(
            table=table, record_id=record_id.lower(), email=_text(doc.get("emailaddress1")),
            first_name=_text(doc.get("firstname")), last_name=_text(doc.get("lastname")),
            full_name=_text(doc.get("fullname")) or _text(doc.get("name")),
            company=_text(doc.get("companyname")) or (_text(doc.get("name")) if table == "account" else None))

    # -- notes ------------------------------------------------------------------------------------------
    def create_note(self, *, note_id: str, table: str, record_id: str, subject: str, text: str, token: str,
                    deadline: float | None = None) -> NoteWritten:
        """Add a note with the client-chosen id ``note_id`` to the record's timeline, exactly once.

        429/5xx/connection failures are retried (``Retry-After`` honoured) while ``deadline`` (a
        ``time.monotonic()`` value) allows; a duplicate-key answer means an earlier attempt wrote it.
        """
        entity_set = TABLES[table][0]
        body = {
            "annotationid": note_id,
            "subject": subject[:SUBJECT_MAX],
            "notetext": text[:NOTETEXT_MAX],
            f"objectid_{table}@odata.bind": f"/{entity_set}({record_id})",
        }
        url = f"{self.config.api_base}/annotations"
        attempt = 0
        while True:
            attempt += 1
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise errors.DataverseTimeout("The time for writing the note ran out.")
            try:
                self._send("POST", url, token, json=body, headers={"Content-Type": "application/json"},
                           read_timeout=None if remaining is None else min(self.config.read_timeout, remaining))
                return NoteWritten(note_id=note_id, created=True, attempts=attempt)
            except errors.DataverseDuplicate:
                return NoteWritten(note_id=note_id, created=False, attempts=attempt)
            except errors.DataverseUnavailable as exc:
                wait = exc.retry_after if exc.retry_after is not None else self.config.backoff * 2 ** (attempt - 1)
                left = None if deadline is None else deadline - time.monotonic()
                if attempt >= MAX_NOTE_ATTEMPTS or (left is not None and wait >= left):
                    raise
                log.info("Dataverse note attempt %s failed (%s); retrying in %.2f s", attempt, exc.code, wait)
                self._sleep(wait)


def _transport_error(exc: requests.RequestException) -> errors.DataverseError:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return errors.DataverseUnavailable("Dataverse could not be reached (connect timeout).")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return errors.DataverseTimeout("Dataverse did not answer in time.")
    if isinstance(exc, requests.exceptions.SSLError):
        return errors.DataverseUnavailable("The TLS connection to Dataverse failed (check MICROSOFT_CA_BUNDLE).",
                                           code="DATAVERSE_TLS_FAILED")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return errors.DataverseUnavailable("Dataverse could not be reached or closed the connection.")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return errors.DataverseRejected("The Dataverse URL is not valid (DATAVERSE_URL).",
                                        code="DATAVERSE_MISCONFIGURED")
    return errors.DataverseUnavailable(f"The call to Dataverse failed ({type(exc).__name__}).")


def _status_error(resp: requests.Response) -> errors.DataverseError:
    """Dataverse's ``{"error": {"code", "message"}}`` to our types; its message is not copied (it may name
    field values), only the status and the error code."""
    upstream = None
    try:
        doc = resp.json()
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            upstream = str(doc["error"].get("code") or "") or None
    except ValueError:
        pass
    status = resp.status_code
    where = f"Dataverse answered {status}" + (f" ({upstream})" if upstream else "")
    kw: dict[str, Any] = {"status": status, "upstream_code": upstream}
    if status == 412 or upstream == DUPLICATE_KEY:
        return errors.DataverseDuplicate(f"{where}: a record with this id exists already.", **kw)
    if status == 404:
        return errors.DataverseNotFound(f"{where}: the record does not exist.", **kw)
    if status == 401:
        return errors.DataverseDenied(f"{where}: the access token was not accepted.",
                                      code="DATAVERSE_UNAUTHORIZED", **kw)
    if status == 403:
        return errors.DataverseDenied(f"{where}: the caller may not do this in Dataverse (security role, "
                                      "application user).", **kw)
    if status == 429:
        return errors.DataverseUnavailable(f"{where}: too many requests.", code="DATAVERSE_RATE_LIMITED",
                                           retry_after=parse_retry_after(resp.headers.get("Retry-After")), **kw)
    if status in (408, 504):
        return errors.DataverseTimeout(f"{where}: timeout.", retry_after=parse_retry_after(
            resp.headers.get("Retry-After")), **kw)
    if status >= 500:
        return errors.DataverseUnavailable(f"{where}: unavailable.", retry_after=parse_retry_after(
            resp.headers.get("Retry-After")), **kw)
    return errors.DataverseRejected(f"{where}: the request was refused.", **kw)
