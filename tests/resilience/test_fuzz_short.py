"""schemathesis against the service started as the Procfile starts it (sandbox mode): every operation, every
phase (examples, coverage, fuzzing, stateful links); no 5xx, answers match the spec, errors are problem+json
(bench/fuzz.py at CI size, 40 examples per operation, about a minute; the bench runs 100); then hostile inputs
of issue #13's classes (bench/hostile.py)."""

from __future__ import annotations

from bench import fuzz


def test_schemathesis_finds_nothing():
    res = fuzz.run(max_examples=40, phases="examples,coverage,fuzzing,stateful", seed=7, hostile_examples=150)
    report = res["report"]
    assert report, res["stderr"]
    assert report["operations"]["tested"] == report["operations"]["total"] > 0
    assert res["exit_code"] == 0 and not report["failures"] and not report["errors"], fuzz.summary(res)
    hostile = res["hostile"]  # issue #13's input classes, on every write operation: never a 5xx
    assert hostile["examples"] == 150 and len(hostile["by_class"]) >= 8, hostile
    assert hostile["failures"] == [], hostile["failures"][:3]
    assert res["service_error_log_lines"] == [], res["service_error_log_lines"][:3]
