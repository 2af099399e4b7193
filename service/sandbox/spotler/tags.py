"""The Spotler simulator's tags and scores (assumed wire format, docs/spotler-api-coverage.md)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from werkzeug.wrappers import Response

from service.sandbox.spotler.wire import SimError, json_response

TAG_ROUTES: list[tuple[str, str, list[str]]] = [
    ("/contact/<eid>/tag", "tag_add", ["POST"]),
    ("/contact/<eid>/tag", "tag_remove", ["DELETE"]),
    ("/contact/<eid>/score", "score", ["POST"]),
    ("/tag/list", "tag_list", ["GET"]),
]


class TagsMixin:
    """Mixed into :class:`~service.sandbox.spotler.app.SpotlerSimulator` (which provides ``lock``, the state,
    ``_now``, ``_effect``, ``_date``, ``_page`` and ``_contact_out``)."""

    @staticmethod
    def _tag_names(body: Any) -> list[str]:
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list) or not tags:
            raise SimError(400, "INVALID_PARAMS", "tags must be a non-empty list")
        for t in tags:
            if not isinstance(t, str) or not t.strip() or len(t) > 64 or any(ch in t for ch in ",;"):
                raise SimError(400, "INVALID_PARAMS", "Tag name is invalid")
        return [t.strip() for t in tags]

    def h_tag_list(self, request, body):
        counts = Counter(t for tags in self.contact_tags.values() for t in tags)
        return json_response(200, [{"name": t, "contactCount": counts.get(t, 0)} for t in self.all_tags])

    def h_tag_add(self, request, body, eid):
        self._get_contact(eid)
        tags = self._tag_names(body)
        score = body.get("score")
        if score is not None and (not isinstance(score, int) or isinstance(score, bool)):
            raise SimError(400, "INVALID_PARAMS", "score must be an integer")
        mine = self.contact_tags.setdefault(eid, {})
        for t in tags:
            if t not in self.all_tags:
                self.all_tags.append(t)
            if t not in mine:
                self._effect("tags_added")
                mine[t] = None
            if score is not None:
                mine[t] = score
        return Response(status=204)

    def h_tag_remove(self, request, body, eid):
        self._get_contact(eid)
        tags = self._tag_names(body)
        mine = self.contact_tags.setdefault(eid, {})
        for t in tags:
            if mine.pop(t, "absent") != "absent":
                self._effect("tags_removed")
        return Response(status=204)

    def h_score(self, request, body, eid):
        self._get_contact(eid)
        if not isinstance(body, dict) or not isinstance(body.get("tag"), str) or not body["tag"].strip():
            raise SimError(400, "INVALID_PARAMS", "tag is required")
        score = body.get("score")
        if not isinstance(score, int) or isinstance(score, bool):
            raise SimError(400, "INVALID_PARAMS", "score must be an integer")
        mode = str(body.get("mode") or "SET").upper()
        if mode not in ("SET", "INCREASE", "DECREASE"):
            raise SimError(400, "INVALID_PARAMS", "mode must be SET, INCREASE or DECREASE")
        tag = body["tag"].strip()
        mine = self.contact_tags.setdefault(eid, {})
        current = mine.get(tag) or 0
        if score == 0 and mode != "SET":  # [ASSUMED] a change by 0 changes nothing and answers the score (a read)
            return json_response(200, {"tag": tag, "score": current})
        new = score if mode == "SET" else current + score if mode == "INCREASE" else current - score
        if tag not in self.all_tags:
            self.all_tags.append(tag)
        mine[tag] = new
        self._effect("score_changes")
        return json_response(200, {"tag": tag, "score": new})
