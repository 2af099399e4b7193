"""The only exceptions the Microsoft clients (Entra ID, msal, Dataverse) raise.

Transport errors, msal's error dicts and Dataverse's error bodies are mapped to these at the boundary; no
``requests``/``msal``/``jwt`` exception leaves ``service.microsoft``. ``code`` is stable (upper snake case) and
safe to show; ``message`` never contains a token, a secret or an e-mail address.

| type                  | meaning                                                        |
|-----------------------|----------------------------------------------------------------|
| TokenRejected         | an incoming access token is not acceptable (-> 401, ``reason``) |
| KeysUnavailable       | the tenant's signing keys could not be fetched (-> 503)        |
| TokenAcquisitionError | Entra ID refused or failed to issue a token for Dataverse      |
| DataverseNotFound     | the record does not exist                                      |
| DataverseDenied       | 401/403: the app or the user may not do this (configuration)   |
| DataverseDuplicate    | a record with that id exists already (412 / 0x80040237)        |
| DataverseRejected     | another 4xx (bad request, validation)                          |
| DataverseUnavailable  | 429 / 5xx / connection failure; ``retry_after`` when known     |
| DataverseTimeout      | no answer in time                                              |
"""

from __future__ import annotations


class MicrosoftError(Exception):
    default_code = "MICROSOFT_ERROR"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 upstream_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        #: the upstream HTTP status, when there was one
        self.status = status
        #: Dataverse's error code (``0x80040217``) or Entra ID's error (``invalid_grant``), when known
        self.upstream_code = upstream_code


class TokenRejected(MicrosoftError):
    """An incoming bearer token failed validation. ``code`` is the reason (e.g. ``TOKEN_EXPIRED``)."""

    default_code = "TOKEN_INVALID"


class KeysUnavailable(MicrosoftError):
    default_code = "ENTRA_KEYS_UNAVAILABLE"


class TokenAcquisitionError(MicrosoftError):
    default_code = "DATAVERSE_TOKEN_FAILED"

    def __init__(self, message: str, *, transient: bool = False, **kw) -> None:
        super().__init__(message, **kw)
        self.transient = transient


class DataverseError(MicrosoftError):
    default_code = "DATAVERSE_ERROR"


class DataverseNotFound(DataverseError):
    default_code = "DATAVERSE_RECORD_NOT_FOUND"


class DataverseDenied(DataverseError):
    default_code = "DATAVERSE_ACCESS_DENIED"


class DataverseDuplicate(DataverseError):
    default_code = "DATAVERSE_DUPLICATE"


class DataverseRejected(DataverseError):
    default_code = "DATAVERSE_REJECTED"


class DataverseUnavailable(DataverseError):
    default_code = "DATAVERSE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class DataverseTimeout(DataverseUnavailable):
    default_code = "DATAVERSE_TIMEOUT"
