"""The trigger state codec: signed, compact, bound to trigger + filters + caller, free of personal data."""

from __future__ import annotations

import pytest

from service.actions.problems import ActionError
from service.actions.triggers.state import StateCodec, TriggerState, pack_seen, unpack_seen

HASH_KEY = b"test-ledger-key"


@pytest.fixture
def codec() -> StateCodec:
    return StateCodec(["s" * 32], HASH_KEY)


def _state(**kw) -> TriggerState:
    base = dict(kind="OnContactAdded", binding="b" * 16, cursor_ms=1_800_000_000_000, origin_ms=1_799_999_000_000)
    return TriggerState(**{**base, **kw})


def _code(exc) -> str:
    return exc.value.problem.code


def test_round_trip_keeps_every_field(codec):
    seen = {bytes([i] * 6): 1_800_000_000 + i for i in range(10)}
    st = _state(seen=seen, filters=("1", "3"), instance="inst-1", baseline_after=2000)
    back = codec.loads(codec.dumps(st))
    assert back == st
    spilled = _state(spill="a" * 40)
    assert codec.loads(codec.dumps(spilled)).spill == "a" * 40


def test_64_entries_stay_well_under_two_kilobytes(codec):
    seen = {i.to_bytes(6, "big"): 1_800_000_000 + i for i in range(64)}
    token = codec.dumps(_state(seen=seen, filters=("firstName", "lastName"), instance="x" * 16))
    assert len(token) < 1500


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: t[: len(t) // 2],
    lambda t: "x" + t,
    lambda t: "",
    lambda t: "a.b.c",
    lambda t: "." * 5000,
])
def test_tampered_or_malformed_states_are_400(codec, mangle):
    token = codec.dumps(_state())
    with pytest.raises(ActionError) as exc:
        codec.loads(mangle(token))
    assert exc.value.problem.status == 400 and _code(exc) == "TRIGGER_STATE_INVALID"


def test_a_well_signed_payload_of_the_wrong_shape_is_400(codec):
    for payload in ({"v": 2}, {"v": 1, "k": "x"}, [1, 2], {"v": 1, "k": "x", "b": "y", "c": -1, "o": 0},
                    {"v": 1, "k": "x", "b": "y", "c": 1, "o": 1, "s": "abc"}):
        token = codec._serializer.dumps(payload)
        with pytest.raises(ActionError) as exc:
            codec.loads(token)
        assert _code(exc) == "TRIGGER_STATE_INVALID"


def test_rotation_accepts_the_old_secret_and_signs_with_the_new_one(codec):
    token = codec.dumps(_state())
    rotated = StateCodec(["s" * 32, "n" * 32], HASH_KEY)
    assert rotated.loads(token) == _state()
    new_token = rotated.dumps(_state())
    with pytest.raises(ActionError):
        codec.loads(new_token)
    assert StateCodec(["n" * 32], HASH_KEY).loads(new_token) == _state()


def test_binding_depends_on_trigger_filters_and_caller(codec):
    base = codec.binding("OnContactAdded", {"permissions": "1"}, "key-a")
    assert base == codec.binding("OnContactAdded", {"permissions": "1"}, "key-a")
    assert len({base, codec.binding("OnContactChanged", {"permissions": "1"}, "key-a"),
                codec.binding("OnContactAdded", {"permissions": "2"}, "key-a"),
                codec.binding("OnContactAdded", {}, "key-a"),
                codec.binding("OnContactAdded", {"permissions": "1"}, "key-b")}) == 5


def test_hashes_are_keyed_and_reveal_nothing(codec):
    digest = codec.event_digest("added", "jan@example.com", 123)
    assert len(digest) == 16 and b"jan" not in digest
    assert digest == codec.event_digest("added", "jan@example.com", 123)
    assert StateCodec(["s" * 32], b"other-key").event_digest("added", "jan@example.com", 123) != digest
    assert StateCodec(["t" * 32], HASH_KEY).event_digest("added", "jan@example.com", 123) == digest  # secret rotates
    assert codec.contact_hash("cust-1") != codec.contact_hash("cust-2") and len(codec.contact_hash("cust-1")) == 32


def test_seen_packing_round_trips_and_rejects_garbage():
    seen = {bytes([1, 2, 3, 4, 5, i]): 1_700_000_000 + i for i in range(5)}
    assert unpack_seen(pack_seen(seen)) == seen
    with pytest.raises(ValueError):
        unpack_seen(pack_seen(seen)[:-3])


def test_a_codec_needs_a_secret():
    with pytest.raises(ValueError):
        StateCodec([], HASH_KEY)
    with pytest.raises(ValueError):
        StateCodec([""], HASH_KEY)
