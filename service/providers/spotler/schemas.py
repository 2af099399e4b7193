"""Marshmallow schemas for Spotler Mail+ payloads.

Loading is tolerant: unknown keys are dropped (``unknown = EXCLUDE``), response dates may be epoch numbers
(milliseconds; values below 10^11 are taken as seconds) or ISO 8601 strings (date-only or date-time, with or
without offset; naive values are UTC), and list responses may be bare arrays or ``{"paging": ..., key: [...]}``
objects (reference §3.2, §3.3, §5.1.7). Loaded objects are plain dicts with snake_case keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load


def parse_datetime(value: Any) -> dt.datetime | None:
    """An aware datetime from an epoch number (ms or s) or an ISO 8601 string; None for empty input."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("not a date")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        number = float(value)
        seconds = number / 1000.0 if abs(number) >= 1e11 else number
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if not isinstance(value, str):
        raise ValueError("not a date")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        parsed = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_date(value: Any) -> dt.date | None:
    """A calendar date from ``YYYY-MM-DD``, an ISO date-time or an epoch number; None for empty input."""
    if isinstance(value, str) and len(value.strip()) == 10:
        return dt.date.fromisoformat(value.strip())
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


class FlexibleDateTime(fields.Field):
    """Epoch milliseconds/seconds or ISO 8601 in, aware ``datetime`` out; dumps ISO 8601."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_datetime(value)
        except (ValueError, OverflowError, OSError) as exc:
            raise ValidationError(f"Not a date: {value!r}") from exc

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.isoformat()


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class ErrorSchema(_Base):
    error_type = fields.Str(data_key="errorType", load_default=None, allow_none=True)
    message = fields.Str(load_default=None, allow_none=True)
    external_contact_ids = fields.List(fields.Str(), data_key="externalContactIds", load_default=list)
    # An ExternalTriggerValidationResult also comes back on 404/417
    result = fields.Str(load_default=None, allow_none=True)


class PagingSchema(_Base):
    next = fields.Str(load_default=None, allow_none=True)
    after = fields.Int(load_default=None, allow_none=True)


class ChannelSchema(_Base):
    name = fields.Str(required=True)
    value = fields.Bool(required=True)


class ContactSchema(_Base):
    external_id = fields.Str(data_key="externalId", required=True)
    encrypted_id = fields.Str(data_key="encryptedId", load_default=None, allow_none=True)
    created = FlexibleDateTime(load_default=None, allow_none=True)
    last_changed = FlexibleDateTime(data_key="lastChanged", load_default=None, allow_none=True)
    test_group = fields.Bool(data_key="testGroup", load_default=None, allow_none=True)
    temporary = fields.Bool(load_default=None, allow_none=True)
    properties = fields.Dict(keys=fields.Str(), values=fields.Raw(allow_none=True), load_default=dict)
    channels = fields.List(fields.Nested(ChannelSchema), load_default=list)

    @pre_load
    def _nulls(self, data, **kwargs):
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not (k in ("properties", "channels") and v is None)}
        return data


class SetEntrySchema(_Base):
    bit = fields.Int(required=True)
    description = fields.Str(load_default="")
    rank = fields.Int(load_default=0)


class PropertySchema(_Base):
    name = fields.Str(required=True)
    description = fields.Str(load_default=None, allow_none=True)
    type = fields.Str(required=True)
    entries = fields.List(fields.Nested(SetEntrySchema), load_default=list, allow_none=True)


class AddContactResultSchema(_Base):
    external_id = fields.Str(data_key="externalId", load_default=None, allow_none=True)
    code = fields.Str(required=True)
    message = fields.Str(load_default=None, allow_none=True)


class BounceSchema(_Base):
    date = FlexibleDateTime(load_default=None, allow_none=True)
    type = fields.Str(load_default=None, allow_none=True)
    contact = fields.Nested(ContactSchema, required=True)
    encrypted_act_id = fields.Str(data_key="encryptedActId", load_default=None, allow_none=True)


class InteractionSchema(_Base):
    """One item of ``/mailing-interaction/*``: an open, click, bounce or send of a mailing by a contact."""

    id = fields.Str(required=True)
    external_contact_id = fields.Str(data_key="externalContactId", load_default=None, allow_none=True)
    encrypted_mailing_id = fields.Str(data_key="encryptedMailingId", load_default=None, allow_none=True)
    date = FlexibleDateTime(load_default=None, allow_none=True)
    change_date = FlexibleDateTime(data_key="changeDate", load_default=None, allow_none=True)
    trend_report_id = fields.Int(data_key="trendReportId", load_default=None, allow_none=True)
    bounce_type = fields.Str(data_key="bounceType", load_default=None, allow_none=True)

    @pre_load
    def _id(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("id"), (int, str)) and not isinstance(data["id"], bool):
            return {**data, "id": str(data["id"])}
        return data


class MailingSchema(_Base):
    encrypted_id = fields.Str(data_key="encryptedId", required=True)
    name = fields.Str(load_default="")
    scheduled_start_date = FlexibleDateTime(data_key="scheduledStartDate", load_default=None, allow_none=True)
    type = fields.Str(load_default=None, allow_none=True)
    sent_count = fields.Int(data_key="sentCount", load_default=None, allow_none=True)


class CampaignTriggerSchema(_Base):
    encrypted_id = fields.Str(data_key="encryptedId", required=True)
    name = fields.Str(load_default="")


class CampaignSchema(_Base):
    encrypted_id = fields.Str(data_key="encryptedId", required=True)
    name = fields.Str(load_default="")
    active = fields.Bool(load_default=True)
    triggers = fields.List(fields.Nested(CampaignTriggerSchema), load_default=list, allow_none=True)


class FieldValueSchema(_Base):
    """A campaign field / automation field as sent to Spotler."""

    name = fields.Str(required=True)
    type = fields.Str(load_default="STRING")
    value = fields.Str(allow_none=True)
    values = fields.List(fields.Str())


class AutomationRunSchema(_Base):
    automation_id = fields.Str(data_key="automationId", load_default=None, allow_none=True)
    result = fields.Str(load_default="UNKNOWN")
    automation_contact_id = fields.Str(data_key="automationContactId", load_default=None, allow_none=True)


class TriggerResultSchema(_Base):
    """ExternalTriggerValidationResult, plus ``automationContactId(s)`` wherever a newer API puts it."""

    result = fields.Str(load_default="UNKNOWN")
    automation_results = fields.List(fields.Nested(AutomationRunSchema), data_key="automationResults",
                                     load_default=list, allow_none=True)
    automation_contact_id = fields.Str(data_key="automationContactId", load_default=None, allow_none=True)
    automation_contact_ids = fields.List(fields.Str(), data_key="automationContactIds", load_default=list)


class AutomationFieldDefSchema(_Base):
    name = fields.Str(required=True)
    type = fields.Str(load_default="STRING")


class AutomationSchema(_Base):
    """One item of the (assumed) automation list. Several key spellings are accepted (see pre_load)."""

    automation_id = fields.Str(data_key="automationId", load_default=None, allow_none=True)
    name = fields.Str(load_default="")
    trigger_code = fields.Str(data_key="triggerCode", load_default=None, allow_none=True)
    status = fields.Str(load_default=None, allow_none=True)
    active = fields.Bool(load_default=None, allow_none=True)
    fields_ = fields.List(fields.Nested(AutomationFieldDefSchema), data_key="automationFields",
                          load_default=list, allow_none=True)

    @pre_load
    def _aliases(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias in ("externalTriggerCode", "externalTrigger", "triggerId", "code"):
            if not data.get("triggerCode") and isinstance(data.get(alias), str):
                data["triggerCode"] = data[alias]
        if not data.get("triggerCode") and isinstance(data.get("triggers"), list) and data["triggers"]:
            first = data["triggers"][0]
            if isinstance(first, dict):
                data["triggerCode"] = first.get("triggerCode") or first.get("code") or first.get("encryptedId")
        for alias in ("id", "encryptedId", "uuid"):
            if not data.get("automationId") and isinstance(data.get(alias), str):
                data["automationId"] = data[alias]
        if "automationFields" not in data and isinstance(data.get("fields"), list):
            data["automationFields"] = data["fields"]
        return data


class StopResultSchema(_Base):
    automation_contact_id = fields.Str(data_key="automationContactId", required=True)
    result = fields.Str(load_default="STOPPED")


class AudienceSchema(_Base):
    external_id = fields.Str(data_key="externalId", required=True)
    name = fields.Str(load_default="")
    description = fields.Str(load_default=None, allow_none=True)
    create_date = FlexibleDateTime(data_key="createDate", load_default=None, allow_none=True)
    change_date = FlexibleDateTime(data_key="changeDate", load_default=None, allow_none=True)
    last_contact_added_at = FlexibleDateTime(data_key="lastContactAddedAt", load_default=None, allow_none=True)
    last_contact_removed_at = FlexibleDateTime(data_key="lastContactRemovedAt", load_default=None, allow_none=True)
    last_sync_date = FlexibleDateTime(data_key="lastSyncDate", load_default=None, allow_none=True)


class TemporaryListSchema(_Base):
    external_id = fields.Str(data_key="externalTemporaryListId", load_default=None, allow_none=True)
    name = fields.Str(required=True)
    created_at = FlexibleDateTime(data_key="createdAt", load_default=None, allow_none=True)
    type = fields.Str(load_default="API")


class TagSchema(_Base):
    name = fields.Str(required=True)
    score = fields.Int(load_default=None, allow_none=True)
    contact_count = fields.Int(data_key="contactCount", load_default=None, allow_none=True)

    @pre_load
    def _bare(self, data, **kwargs):
        return {"name": data} if isinstance(data, str) else data


class ScoreResultSchema(_Base):
    tag = fields.Str(load_default=None, allow_none=True)
    score = fields.Int(load_default=None, allow_none=True)


class MemberSchema(_Base):
    external_id = fields.Str(data_key="externalId", required=True)

    @pre_load
    def _bare(self, data, **kwargs):
        if isinstance(data, str):
            return {"externalId": data}
        if isinstance(data, dict) and "externalId" not in data and "externalContactId" in data:
            return {"externalId": data["externalContactId"]}
        return data


# -- outbound ----------------------------------------------------------------------------------------------


class _Out(Schema):
    """Dumps dicts by key only: marshmallow would otherwise fall back to ``getattr(dict, "update")``."""

    def get_attribute(self, obj, attr, default):
        if isinstance(obj, dict):
            return obj.get(attr, default)
        return super().get_attribute(obj, attr, default)


class ChannelOutSchema(_Out):
    name = fields.Str(required=True)
    value = fields.Bool(required=True)


class FieldValueOutSchema(_Out):
    name = fields.Str(required=True)
    type = fields.Str()
    value = fields.Str(allow_none=True)
    values = fields.List(fields.Str())


class ContactOutSchema(_Out):
    external_id = fields.Str(data_key="externalId", required=True)
    properties = fields.Dict(keys=fields.Str(), values=fields.Raw(allow_none=True))
    channels = fields.List(fields.Nested(ChannelOutSchema))


class ContactRequestSchema(_Out):
    update = fields.Bool()
    purge = fields.Bool()
    contact = fields.Nested(ContactOutSchema, required=True)


class AddContactsRequestSchema(_Out):
    update = fields.Bool()
    purge = fields.Bool()
    contacts = fields.List(fields.Nested(ContactOutSchema), required=True)


class CampaignTriggerRequestSchema(_Out):
    external_contact_id = fields.Str(data_key="externalContactId", required=True)
    campaign_fields = fields.List(fields.Nested(FieldValueOutSchema), data_key="campaignFields")


# -- helpers -----------------------------------------------------------------------------------------------


class PayloadError(ValueError):
    """A response did not have the expected shape."""


def load_one(schema: Schema, payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise PayloadError(f"expected an object, got {type(payload).__name__}")
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise PayloadError(str(exc.messages)) from None


def load_list(schema: Schema, payload: Any, key: str | None = None) -> tuple[list[dict], dict | None]:
    """Items and paging from a bare array or ``{paging, <key>: [...]}`` (any list-valued key if ``key`` is absent).

    Invalid items are skipped rather than failing the whole page (an upstream schema drift on one record
    should not block a dropdown); a payload of the wrong shape raises PayloadError.
    """
    paging = None
    if payload is None:
        return [], None
    if isinstance(payload, dict):
        if isinstance(payload.get("paging"), dict):
            try:
                paging = PagingSchema().load(payload["paging"])
            except ValidationError:
                paging = None
        items = payload.get(key) if key else None
        if items is None:
            lists = [v for k, v in payload.items() if k != "paging" and isinstance(v, list)]
            items = lists[0] if len(lists) == 1 else []
    elif isinstance(payload, list):
        items = payload
    else:
        raise PayloadError(f"expected a list, got {type(payload).__name__}")
    out = []
    for item in items or []:
        try:
            out.append(schema.load(item))
        except ValidationError:
            continue
    return out, paging
