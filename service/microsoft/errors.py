"""The exceptions the Microsoft clients (Entra ID, msal, Dataverse) raise: the ``MicrosoftError`` branch of the
one hierarchy in :mod:`service.errors` (its docstring says what each means)."""

from __future__ import annotations

from service.errors import (
    DataverseDenied,
    DataverseDuplicate,
    DataverseError,
    DataverseNotFound,
    DataverseRejected,
    DataverseTimeout,
    DataverseUnavailable,
    KeysUnavailable,
    MicrosoftError,
    TokenAcquisitionError,
    TokenRejected,
)

__all__ = [
    "DataverseDenied", "DataverseDuplicate", "DataverseError", "DataverseNotFound", "DataverseRejected",
    "DataverseTimeout", "DataverseUnavailable", "KeysUnavailable", "MicrosoftError", "TokenAcquisitionError",
    "TokenRejected",
]
