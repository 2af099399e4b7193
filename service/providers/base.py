"""The provider interface: what the provider-independent actions need from a marketing platform.

Providers (spotler, piggy, spoki) subclass :class:`Provider`, implement what their platform supports and
list what it does not in ``unsupported`` (operationId -> reason). A method left unimplemented raises
:class:`~service.providers.errors.NotSupported`. Providers never import Flask or Connexion; they raise only
the types in :mod:`service.providers.errors`.

Calls that are not safe to repeat: every client classifies its upstream calls (Spotler:
``service.providers.spotler.transport.REPEATABLE``; Piggy and Spoki: ``repeatable=False`` on their one such call,
the automation start). Such a call is never retried; when its answer is lost it raises
:class:`~service.providers.errors.OutcomeUnknown`, and the action settles it with a read-back where the platform
can be asked (:meth:`Provider.read_score`) or the job ends as OUTCOME_UNKNOWN.

The value types below are plain dataclasses so that actions, the ledger and the HTTP layer can use them
without knowing any platform's wire format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from service.providers.errors import AmbiguousContact, NotSupported
from service.providers.http import UnsafeCallGuard

# ---------------------------------------------------------------------------------------------------------
# The one rule of an e-mail lookup
# ---------------------------------------------------------------------------------------------------------

#: how many matches an e-mail lookup asks a platform for: two prove an ambiguity, more name the candidates
EMAIL_LOOKUP_LIMIT = 10


def one_contact(platform: str, matches: list["Contact"], *, more: bool = False) -> "Contact | None":
    """The contact an e-mail lookup found, None when it found none, and :class:`AmbiguousContact` (400
    ``AMBIGUOUS_CONTACT``, the candidates' externalIds and masked e-mail addresses) when it found several: every
    provider's lookup by e-mail ends here, so no platform silently picks one of them. ``more``: the platform
    has more matches than ``matches`` holds."""
    if len(matches) > 1 or (matches and more):
        raise AmbiguousContact(platform, [(c.external_id, c.email) for c in matches], more=more)
    return matches[0] if matches else None


# ---------------------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactRef:
    """How a caller addresses a contact: by e-mail address or by the platform's external id."""

    email: str | None = None
    external_id: str | None = None


@dataclass
class Contact:
    external_id: str
    email: str | None = None
    #: field name (internal name) -> value, as the platform stores it
    properties: dict[str, Any] = field(default_factory=dict)
    #: platform-specific extra identifiers (e.g. Spotler's encryptedId, Piggy's uuid)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldOption:
    """One entry of a multi-choice (``set``) field, e.g. one permission."""

    name: str
    value: str  # the platform's id for the option (Spotler: the bit number as a string)
    description: str | None = None


@dataclass(frozen=True)
class ContactField:
    """A contact property definition.

    ``type`` is one of: string, int, money, date, dateTime, birthdate, email, gender, mobNr, postcode,
    set, boolean (the Spotler vocabulary; other platforms map onto it).
    """

    name: str
    display_name: str
    type: str
    options: tuple[FieldOption, ...] = ()
    read_only: bool = False
    description: str | None = None


@dataclass(frozen=True)
class AutomationField:
    """A personalisation field an automation accepts when it is triggered."""

    name: str
    type: str = "STRING"  # STRING | URL | PRODUCTLIST


@dataclass(frozen=True)
class Automation:
    id: str  # what StartAutomation takes (Spotler: the external trigger code)
    name: str
    status: str = "ACTIVE"  # ACTIVE | INACTIVE | DRAFT ... (platform vocabulary, upper case)
    fields: tuple[AutomationField, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class FieldValue:
    """A value for an automation/campaign field, typed."""

    name: str
    type: str  # STRING | URL | PRODUCTLIST
    value: str | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class AutomationRunResult:
    automation_id: str
    result: str  # OK | AUTOMATION_INACTIVE | PARTICIPATION_LIMIT_REACHED | ...
    automation_contact_id: str | None = None


@dataclass(frozen=True)
class StartResult:
    result: str  # OK | NOT_TRIGGERED | ...
    runs: tuple[AutomationRunResult, ...] = ()

    @property
    def automation_contact_ids(self) -> list[str]:
        return [r.automation_contact_id for r in self.runs if r.automation_contact_id]


@dataclass(frozen=True)
class StopRunResult:
    automation_contact_id: str
    result: str  # STOPPED | NOT_FOUND | ALREADY_FINISHED


@dataclass(frozen=True)
class CampaignTrigger:
    id: str
    name: str


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    active: bool = True
    triggers: tuple[CampaignTrigger, ...] = ()


@dataclass(frozen=True)
class Tag:
    name: str
    score: int | None = None


@dataclass(frozen=True)
class Audience:
    id: str
    name: str
    description: str | None = None


@dataclass(frozen=True)
class MemberResult:
    """Per-contact outcome of an audience change: added, removed, already_member, not_member, not_found."""

    external_id: str
    result: str


@dataclass(frozen=True)
class FeedPage:
    """One page of an event feed: its items and the offset of the next page (None: this was the last)."""

    items: tuple[Any, ...]
    next_after: int | None = None


@dataclass(frozen=True)
class ContactEvent:
    """A contact as a change feed shows it: its state now (platforms tell the state, not what changed)."""

    external_id: str
    email: str | None = None
    created: datetime | None = None
    last_changed: datetime | None = None
    #: permission (option value) -> enabled, for every permission the feed lists for the contact
    permissions: Mapping[str, bool] = field(default_factory=dict)
    #: permission (option value) -> its name, as far as the feed tells
    permission_names: Mapping[str, str] = field(default_factory=dict)
    #: False when the contact opted out of everything (e-mail channel off); None when the platform does not say
    subscribed: bool | None = None
    #: field name -> value as the platform sends it (:meth:`Provider.contact_properties` normalises them)
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BounceEvent:
    contact: ContactEvent
    date: datetime | None
    kind: str  # hard | soft
    mailing_id: str | None = None


@dataclass(frozen=True)
class InteractionEvent:
    """An open or a click of a mailing by a contact (``id`` is unique per kind)."""

    id: str
    kind: str  # opened | clicked
    external_id: str
    mailing_id: str | None = None
    date: datetime | None = None
    change_date: datetime | None = None


@dataclass(frozen=True)
class Mailing:
    id: str
    name: str
    sent_at: datetime | None = None
    type: str | None = None


# ---------------------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------------------


class Provider:
    """Base class of every platform adapter. Methods not overridden raise NotSupported."""

    #: short name: spotler | piggy | spoki
    name: ClassVar[str] = "base"
    #: the platform's name as people know it, for messages
    display_name: ClassVar[str] = "the platform"
    #: which automations the platform lets the API start: the hint of a 404 AUTOMATION_NOT_FOUND
    automation_hint: ClassVar[str] = ""
    #: operationId -> human reason, for each action this platform cannot do
    unsupported: ClassVar[dict[str, str]] = {}
    #: True when start_automation by externalId checks the contact itself (raises NotFound CONTACT_NOT_FOUND),
    #: so the action may skip its own lookup round trip
    trigger_checks_contact: ClassVar[bool] = False

    # -- helpers ------------------------------------------------------------------------------------------
    def _unsupported(self, operation: str):
        reason = self.unsupported.get(operation) or f"{self.name} does not support {operation}."
        raise NotSupported(reason, code="NOT_SUPPORTED_BY_PLATFORM", details={"operation": operation})

    def supports(self, operation: str) -> bool:
        return operation not in self.unsupported

    # -- connection ---------------------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        """Check that the platform answers and accepts our credentials. Returns details for TestConnection."""
        self._unsupported("TestConnection")

    # -- contacts -----------------------------------------------------------------------------------------
    def list_contact_fields(self) -> list[ContactField]:
        self._unsupported("ListContactFields")

    def find_contact(self, ref: ContactRef) -> Contact | None:
        """The contact for ``ref`` or None. Raises InvalidInput when the reference is unusable, and
        AmbiguousContact when several contacts have its e-mail address (every e-mail lookup ends in
        :func:`one_contact`)."""
        self._unsupported("GetContact")

    def upsert_contact(self, ref: ContactRef, properties: dict[str, Any], *, purge: bool = False) -> Contact:
        """Create the contact or update the given properties (``purge``: clear every property not given)."""
        self._unsupported("UpsertContact")

    def update_contact(self, contact: Contact, properties: dict[str, Any]) -> Contact:
        """Change only ``properties`` of an existing contact; a value of None clears that property."""
        self._unsupported("SetContactField")

    def anonymize_contact(self, contact: Contact) -> None:
        self._unsupported("AnonymizeContact")

    # -- permissions --------------------------------------------------------------------------------------
    def list_permissions(self) -> list[FieldOption]:
        self._unsupported("ListPermissions")

    def set_permissions(self, contact: Contact, changes: dict[str, bool]) -> dict[str, bool]:
        """``changes``: option value -> enabled. Others stay. Returns the resulting state of every option."""
        self._unsupported("SetPermissions")

    # -- automations --------------------------------------------------------------------------------------
    def list_automations(self) -> list[Automation]:
        self._unsupported("ListAutomations")

    # A method that makes a call which is not safe to repeat takes ``guard``: whoever runs the work (the job
    # runner) hands it down and is told just before the call is sent (service.providers.http.send_unsafe).
    def start_automation(self, automation_id: str, contact: Contact, fields: list[FieldValue], *,
                         guard: UnsafeCallGuard | None = None) -> StartResult:
        self._unsupported("StartAutomation")

    def stop_automation(self, automation_id: str, contact: Contact) -> list[StopRunResult]:
        self._unsupported("StopAutomation")

    def stop_automation_runs(self, automation_contact_ids: list[str]) -> list[StopRunResult]:
        self._unsupported("StopAutomationRuns")

    # -- campaigns ----------------------------------------------------------------------------------------
    def list_campaigns(self) -> list[Campaign]:
        self._unsupported("ListCampaigns")

    def trigger_campaign(self, trigger_id: str, contact: Contact, fields: list[FieldValue], *,
                         guard: UnsafeCallGuard | None = None) -> None:
        self._unsupported("TriggerCampaign")

    def stop_campaign(self, campaign_id: str, contact: Contact) -> None:
        self._unsupported("StopCampaign")

    # -- tags and scores ----------------------------------------------------------------------------------
    def list_tags(self) -> list[Tag]:
        self._unsupported("ListTags")

    def add_tags(self, contact: Contact, tags: list[str], score: int | None = None) -> None:
        self._unsupported("AddTag")

    def remove_tags(self, contact: Contact, tags: list[str]) -> None:
        self._unsupported("RemoveTag")

    def set_score(self, contact: Contact, tag: str, score: int, mode: str = "set", *,
                  guard: UnsafeCallGuard | None = None) -> int | None:
        """mode: set | increase | decrease. Returns the new score when the platform tells it."""
        self._unsupported("SetScore")

    def read_score(self, contact: Contact, tag: str) -> int | None:
        """The contact's current score on ``tag`` without changing it, or None when the platform cannot tell.
        Used as a read-back: to settle an increase or decrease whose answer was lost."""
        return None

    # -- audiences ----------------------------------------------------------------------------------------
    def list_audiences(self) -> list[Audience]:
        self._unsupported("ListAudiences")

    def create_audience(self, audience_id: str, name: str, description: str | None = None) -> Audience:
        self._unsupported("CreateAudience")

    def add_to_audience(self, audience_id: str, contacts: list[Contact]) -> list[MemberResult]:
        self._unsupported("AddToAudience")

    def remove_from_audience(self, audience_id: str, contacts: list[Contact]) -> list[MemberResult]:
        self._unsupported("RemoveFromAudience")

    # -- event feeds (polling triggers) -------------------------------------------------------------------
    # Windows are inclusive and in the platform's own clock; a feed may answer in any order (the trigger logic
    # sorts). Each method lists the trigger operations it serves in its NotSupported answer.
    def contact_feed(self, since: datetime, until: datetime, *, after: int = 0, page_size: int = 1000) -> FeedPage:
        """Contacts created or changed in ``[since, until]`` (by last change), as :class:`ContactEvent`.
        Serves OnContactAdded, OnContactChanged and OnContactUnsubscribed."""
        self._unsupported("OnContactChanged")

    def bounce_feed(self, since: datetime, until: datetime, *, after: int = 0, page_size: int = 1000) -> FeedPage:
        """Bounces dated in ``[since, until]``, as :class:`BounceEvent`. Serves OnContactBounced."""
        self._unsupported("OnContactBounced")

    def interaction_feed(self, kind: str, since: datetime, until: datetime, *, after: int = 0,
                         page_size: int = 1000) -> FeedPage:
        """Opens (``kind`` opened) or clicks (clicked) changed in ``[since, until]``, as
        :class:`InteractionEvent`. Serves OnMailingInteraction."""
        self._unsupported("OnMailingInteraction")

    def list_mailings(self, since: datetime, until: datetime) -> list[Mailing]:
        """Mailings sent in ``[since, until]`` (the recent-mailings dropdown)."""
        self._unsupported("ListMailings")

    def get_mailing(self, mailing_id: str) -> Mailing | None:
        """One mailing, or None when the platform does not know it."""
        self._unsupported("ListMailings")

    def contact_properties(self, event: ContactEvent) -> dict[str, Any]:
        """The event's fields in the form GetContact answers them (may read the field list once)."""
        return dict(event.properties)

    def lookup_emails(self, external_ids: Iterable[str]) -> dict[str, str | None]:
        """E-mail addresses by external id (None for unknown contacts or contacts without one); providers may
        look them up in parallel."""
        out: dict[str, str | None] = {}
        for i in dict.fromkeys(external_ids):
            contact = self.find_contact(ContactRef(external_id=i))
            out[i] = contact.email if contact is not None else None
        return out

    def close(self) -> None:
        """Release sessions/pools."""
