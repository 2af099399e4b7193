"""Fuzzing: schemathesis against the running service (sandbox mode), every operation of openapi.yaml.

    .venv/bin/python -m bench.fuzz [--max-examples 100] [--phases examples,coverage,fuzzing,stateful]
                                   [--hostile 1000]

The service is started as the Procfile starts it (2 workers; gunicorn.conf.py starts its sandbox simulator)
and schemathesis (4.x CLI, ``schemathesis run``) reads the spec the service serves at /swagger.json, sends
``X-API-Key: sandbox`` and runs the phases given (stateful: the spec's links between operations). Checks:

* ``not_a_server_error`` - no 5xx;
* ``status_code_conformance``, ``response_schema_conformance``, ``response_headers_conformance`` - answers
  match the spec;
* ``negative_data_rejection`` - schema-invalid input is refused; ``ignored_auth`` - the API key is enforced;
  ``use_after_free``, ``ensure_resource_availability`` (stateful);
* ``problem_json_content_type`` (bench/fuzz_hooks.py) - 2xx is application/json, errors are
  application/problem+json documents.

Not run: ``positive_data_acceptance`` (the spec cannot say "email OR externalId" in Swagger 2.0, so
``{"contact": {}}`` is schema-valid yet rightly refused with 400) and ``content_type_conformance`` (the spec's
``produces`` lists application/json only; errors are problem+json by design): both reported in
bench/RESULTS.md.

Then ``--hostile`` requests of the hostile-caller input classes (bench/hostile.py: deep nesting, huge integers,
NaN/Infinity, NUL and lone surrogates, long strings, odd e-mails and identifiers, no or odd Content-Type, chunked
bodies, odd Idempotency-Keys) go to the same service: no 5xx, every error problem+json with a code, no echo of a
value at full length. Exit status 0 when neither found anything and the service logged no ERROR line.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from bench import hostile
from bench.processes import API_KEY, ROOT, Stack, clean_env
from bench.report import machine_info

CHECKS = ("not_a_server_error,status_code_conformance,response_schema_conformance,response_headers_conformance,"
          "negative_data_rejection,ignored_auth,use_after_free,ensure_resource_availability,"
          "problem_json_content_type")
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"  # 413 counts as a rejection of invalid input


def run(max_examples: int = 100, phases: str = "examples,coverage,fuzzing,stateful", seed: int = 1,
        max_time: float | None = None, report_dir: Path | None = None, stack: Stack | None = None,
        hostile_examples: int = 0) -> dict:
    own = stack is None
    st = stack or Stack()
    try:
        svc = st.service(LOG_LEVEL="WARNING")
        out_dir = report_dir or st.dir
        json_path = out_dir / "schemathesis.json"
        cmd = [SCHEMATHESIS, "--config-file", str(CONFIG), "run", svc.base_url + "/swagger.json", "--url", svc.base_url,
               "-H", f"X-API-Key: {API_KEY}", "--checks", CHECKS, "--phases", phases, "-n", str(max_examples),
               "--seed", str(seed), "--generation-database", "none", "--workers", "1", "--request-timeout", "60", "--no-shrink",
               "--suppress-health-check", "all", "--report", "json", "--report-json-path", str(json_path)]
        if max_time:
            cmd += ["--max-time", str(int(max_time))]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600,
                              env=clean_env(SCHEMATHESIS_HOOKS="bench.fuzz_hooks", NO_COLOR="1"))
        elapsed = time.perf_counter() - t0
        report = json.loads(json_path.read_text()) if json_path.exists() else {}
        hostile_report = None
        if hostile_examples:
            t1 = time.perf_counter()
            hostile_report = hostile.run(svc.base_url, max_examples=hostile_examples, seed=seed)
            hostile_report["elapsed_s"] = round(time.perf_counter() - t1, 1)
        errors_in_log = [line for line in svc.log_tail(2_000_000).splitlines() if '"level": "ERROR"' in line]
        return {"exit_code": proc.returncode, "elapsed_s": round(elapsed, 1), "command": " ".join(cmd[1:]),
                "report": report, "stdout": proc.stdout, "stderr": proc.stderr[-5000:],
                "service_error_log_lines": errors_in_log[:20], "hostile": hostile_report}
    finally:
        if own:
            st.close()


def summary(res: dict) -> str:
    r = res["report"]
    lines = [f"schemathesis exit code {res['exit_code']} after {res['elapsed_s']} s."]
    if r:
        tc = r.get("test_cases", {})
        lines.append(f"Operations tested: {r.get('operations', {}).get('tested')}/{r.get('operations', {}).get('total')}; "
                     f"test cases generated: {tc.get('generated')}; with failures: {tc.get('with_failures')}; "
                     f"errored: {tc.get('errored')}.")
        lines.append("Phases: " + ", ".join(f"{k} {v.get('status')}" for k, v in r.get("phases", {}).items()))
        for f in r.get("failures", []):
            lines.append(f"- {f['code']} {f['title']} x{f['count']}: {', '.join(f['operations'])}")
        for e in r.get("errors", []):
            lines.append(f"- error: {e}")
        warnings = {k: v for k, v in (r.get("warnings") or {}).items() if v}
        if warnings:
            lines.append(f"- warnings: {warnings}")
    if res.get("hostile"):
        lines.append(f"Hostile inputs ({res['hostile']['elapsed_s']} s): " + hostile.markdown(res["hostile"]))
    if res["service_error_log_lines"]:
        lines.append(f"- the service logged {len(res['service_error_log_lines'])} ERROR lines")
    tail = re.search(r"={5,} SUMMARY ={5,}.*", res["stdout"], re.S)
    if tail:
        lines.append("\n" + tail.group(0).strip())
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-examples", type=int, default=100)
    p.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-time", type=float, default=None)
    p.add_argument("--hostile", type=int, default=1000, help="hostile-input requests after schemathesis (0: none)")
    p.add_argument("--output", help="write schemathesis's full console output here")
    args = p.parse_args()
    res = run(args.max_examples, args.phases, args.seed, args.max_time, hostile_examples=args.hostile)
    if args.output:
        Path(args.output).write_text(res["stdout"] + "\n" + res["stderr"])
    print(f"machine: {machine_info()}")
    print(summary(res))
    hostile_ok = not res["hostile"] or not res["hostile"]["failures"]
    sys.exit(0 if res["exit_code"] == 0 and hostile_ok and not res["service_error_log_lines"] else 1)


if __name__ == "__main__":
    main()
