"""schemathesis against the service started as the Procfile starts it (sandbox mode): every operation, every
phase (examples, coverage, fuzzing, stateful links); no 5xx, answers match the spec, errors are problem+json
(bench/fuzz.py at CI size: about 2 minutes)."""

from __future__ import annotations

from bench import fuzz


def test_schemathesis_finds_nothing():
    res = fuzz.run(max_examples=80, phases="examples,coverage,fuzzing,stateful", seed=7)
    report = res["report"]
    assert report, res["stderr"]
    assert report["operations"]["tested"] == report["operations"]["total"] > 0
    assert res["exit_code"] == 0 and not report["failures"] and not report["errors"], fuzz.summary(res)
    assert res["service_error_log_lines"] == [], res["service_error_log_lines"][:3]
