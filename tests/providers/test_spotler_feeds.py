"""The Spotler provider's event feeds against the simulator: one page at a time, both list shapes, both date
forms, the value types the trigger logic uses."""

from __future__ import annotations

import datetime as dt

import pytest

from service.providers.spotler.client import iso_param
from service.sandbox.spotler import DEMO

SINCE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("shape, form", [("paged", "epoch_ms"), ("array", "iso"), ("paged", "iso")])
def test_contact_feed_pages_in_either_shape_and_date_form(spotler, spotler_sim, shape, form):
    spotler_sim.list_shape, spotler_sim.date_format = shape, form
    page = spotler.contact_feed(SINCE, UNTIL, page_size=4)
    assert len(page.items) == 4 and page.next_after == 4
    rest = spotler.contact_feed(SINCE, UNTIL, after=page.next_after, page_size=4)
    assert len(rest.items) == 2 and rest.next_after is None
    jan = page.items[0]
    assert jan.external_id == DEMO.contacts["jan"] and jan.email == DEMO.emails["jan"]
    assert jan.created == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC) == jan.last_changed
    assert jan.permissions == {"1": True, "2": True}
    assert jan.permission_names == {"1": "Newsletter", "2": "Offers"} and jan.subscribed is True
    assert spotler_sim.stats()["requests"]["GET /contact/updates/list"] == 2


def test_an_empty_window_is_one_call(spotler, spotler_sim):
    page = spotler.contact_feed(UNTIL - dt.timedelta(days=1), UNTIL)
    assert page.items == () and page.next_after is None
    assert spotler_sim.stats()["requests"]["GET /contact/updates/list"] == 1


def test_contact_properties_are_normalised_like_get_contact(spotler):
    jan = spotler.contact_feed(SINCE, UNTIL, page_size=1).items[0]
    props = spotler.contact_properties(jan)
    assert props["lastPurchaseDate"] == "2023-10-01" and props["firstName"] == "Jan"


def test_opt_out_shows_as_not_subscribed(spotler, spotler_sim):
    spotler_sim.unsubscribe({"email": DEMO.emails["anna"]})
    anna = next(e for e in spotler.contact_feed(SINCE, UNTIL).items if e.external_id == DEMO.contacts["anna"])
    assert anna.subscribed is False and not any(anna.permissions.values())


def test_bounce_feed_maps_types_and_mailing(spotler, spotler_sim):
    spotler_sim.bounce({"email": DEMO.emails["jan"], "type": "hard", "mailingId": DEMO.mailings["offers"]})
    page = spotler.bounce_feed(SINCE, UNTIL)
    assert [(b.contact.external_id, b.kind, b.mailing_id) for b in page.items] == [
        (DEMO.contacts["piet"], "soft", "TWFpbGluZzE"), (DEMO.contacts["jan"], "hard", DEMO.mailings["offers"])]
    assert page.items[1].contact.email == DEMO.emails["jan"] and page.items[1].date.tzinfo is not None


def test_interaction_feed_mailings_and_lookups(spotler, spotler_sim):
    spotler_sim.engage("opened", {"email": DEMO.emails["jan"], "mailingId": DEMO.mailings["welcome"]})
    spotler_sim.engage("clicked", {"email": DEMO.emails["piet"]})
    [opened] = spotler.interaction_feed("opened", SINCE, UNTIL).items
    assert (opened.kind, opened.external_id, opened.mailing_id) == ("opened", DEMO.contacts["jan"],
                                                                    DEMO.mailings["welcome"])
    assert opened.id.isdigit() and opened.change_date == opened.date
    [clicked] = spotler.interaction_feed("clicked", SINCE, UNTIL).items
    assert clicked.external_id == DEMO.contacts["piet"]
    mailings = spotler.list_mailings(SINCE, UNTIL)
    assert [m.name for m in mailings] == ["November newsletter", "Welcome mail", "Spring offers"]
    assert spotler.get_mailing(DEMO.mailings["offers"]).name == "Spring offers"
    assert spotler.get_mailing("unknown") is None
    found = spotler.lookup_emails([DEMO.contacts["jan"], "nobody", DEMO.contacts["jan"]])
    assert found == {DEMO.contacts["jan"]: DEMO.emails["jan"], "nobody": None}
    requests = spotler_sim.stats()["requests"]
    assert requests["GET /contact/<eid>"] == 2  # one read per distinct id
    assert "GET /contact/properties/list" not in requests  # the field list is not needed for an address


def test_date_parameters_are_whole_seconds_that_never_shrink_the_window():
    when = dt.datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=dt.UTC)
    assert iso_param(when) == "2026-03-01T12:30:15+00:00"
    assert iso_param(when, ceil=True) == "2026-03-01T12:30:16+00:00"
    assert iso_param(when.replace(microsecond=0), ceil=True) == "2026-03-01T12:30:15+00:00"
    local = when.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert iso_param(local) == "2026-03-01T12:30:15+00:00"
