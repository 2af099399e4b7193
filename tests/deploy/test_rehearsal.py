"""The production rehearsal: the service run as docs/deploy.md says to run it on one VM (``python -m deploy.vm``):
two instances of the Procfile's command behind nginx (Debian's package) terminating TLS with a locally generated
certificate, sharing one PostgreSQL schema of their own, in live mode against the Spotler simulator (its own
process, shared by both instances, as the real platform would be). Everything goes through ``https://`` on the
proxy the way Power Platform calls: actions, a polling trigger's Location followed, a 202's Location followed,
the served spec. Then one instance is killed (``SIGKILL`` to its whole process group) in the middle of a load of
idempotent writes retried the way Power Automate retries (same Idempotency-Key on 5xx and connection errors):
every call is answered, none is applied twice (counted in the simulator's state), the other instance answers
meanwhile, and the supervisor brings the dead one back.

nginx is installed by ``make test`` (apt-get, as root); where it cannot be, this module skips, and fails in CI.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from service.sandbox.launch import start_process
from service.sandbox.spotler import DEMO
from service.sandbox.tls import local_ca
from tests.databases import _in_ci, fresh_schema

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
WELCOME = DEMO.automations["welcome"]
API_KEY = "rehearsal-" + secrets.token_hex(12)
DEADLINE_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, what: str, seconds: float = DEADLINE_S):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds:g} s")
        time.sleep(0.1)
    return result


@dataclass
class Rehearsal:
    proc: subprocess.Popen
    log: Path
    run_dir: Path
    base: str
    ports: tuple[int, int]
    sim_url: str  # the simulator's control base (no /integrationservice)
    client: httpx.Client
    ca: str
    notes: dict = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text()

    def instance_pid(self, port: int) -> int:
        pids = re.findall(rf"instance \d \(127\.0\.0\.1:{port}\) started, pid (\d+)", self.output())
        return int(pids[-1])

    def access(self) -> list[dict]:
        path = self.run_dir / "access.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def sim(self, path: str, method: str = "GET", **kwargs) -> dict:
        return httpx.request(method, self.sim_url + path, timeout=10, **kwargs).json()

    def new_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, verify=ssl.create_default_context(cafile=self.ca), trust_env=False,
                            headers={"X-API-Key": API_KEY}, timeout=30)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, pg_admin_url):
    if NGINX is None:
        message = "nginx is not installed (make test installs Debian's package when run as root)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp("rehearsal")
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(fresh_schema(pg_admin_url, prefix="t_rehearsal_"))
        simulator = start_process("spotler")
        stack.callback(simulator.stop)
        tls = local_ca(work / "tls")
        https, ports = _free_port(), (_free_port(), _free_port())
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SPOTLER_", "PIGGY_", "SPOKI_", "API_KEYS", "SANDBOX_", "DATABASE_URL",
                                    "ENTRA_", "DATAVERSE_", "MICROSOFT_"))}
        env.update({  # what docs/deploy.md says a publisher sets, with the simulator standing in for Spotler
            "PROVIDER": "spotler", "SPOTLER_BASE_URL": simulator.url,
            "SPOTLER_CONSUMER_KEY": "sandbox-consumer-key", "SPOTLER_CONSUMER_SECRET": "sandbox-consumer-secret",
            "API_KEYS": API_KEY, "LEDGER_HASH_KEY": secrets.token_hex(24), "TRIGGER_STATE_SECRET": secrets.token_hex(24),
            "DATABASE_URL": database_url, "PUBLIC_HOST": f"localhost:{https}", "ENV_FILE": os.devnull,
            "WEB_CONCURRENCY": "2", "HOME": str(work),
            # short enough for a rehearsal: a dead instance's calls are taken over 3 s after its last renewal; a
            # call not done within 1 s answers 202 + Location
            "JOB_LEASE_SECONDS": "3", "IN_PROGRESS_WAIT_SECONDS": "2", "SYNC_DEADLINE_SECONDS": "1",
            "TRIGGER_FEED_CACHE_SECONDS": "0",
            # REDIS_URL: hosted mode's rate budgets will read it; set it here (with a key prefix of this run) then
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        })
        log = work / "deploy.log"
        run_dir = work / "run"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "deploy.vm", "--cert", str(tls.server_pem_path), "--key",
                 str(tls.server_pem_path), "--listen", f"127.0.0.1:{https}", "--ports", f"{ports[0]},{ports[1]}",
                 "--run-dir", str(run_dir), "--nginx", NGINX],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        started = time.monotonic()

        def cleanup() -> None:  # whatever a failed test left behind: the supervisor, nginx, each instance
            groups = {proc.pid} | {int(p) for p in re.findall(r"started, pid (\d+)", log.read_text())}
            for pgid in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)

        stack.callback(cleanup)

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()[-4000:]
            return "serving https://" in log.read_text()

        _wait_for(ready, "the deployment did not serve")
        base = f"https://localhost:{https}"
        r = Rehearsal(proc, log, run_dir, base, ports, simulator.url.rsplit("/integrationservice", 1)[0],
                      None, str(tls.ca_path))
        r.notes["start_seconds"] = round(time.monotonic() - started, 1)
        r.client = stack.enter_context(r.new_client())
        yield r


# -- a caller that behaves like Power Automate ------------------------------------------------------------
RETRY_CAP_S = 0.5  # Power Automate honours Retry-After (5 s here); the rehearsal shortens the waits


def follow(client: httpx.Client, answer: httpx.Response, deadline: float) -> httpx.Response:
    """A 202 with Location: poll it (GET) until it answers something else."""
    while answer.status_code == 202 and "location" in answer.headers and time.monotonic() < deadline:
        time.sleep(min(float(answer.headers.get("retry-after", 1)), RETRY_CAP_S))
        try:
            answer = client.get(answer.headers["location"])
        except httpx.TransportError:
            continue
    return answer


def pa_call(client: httpx.Client, method: str, path: str, body: dict | None = None, *, key: str | None = None,
            seconds: float = 90) -> tuple[httpx.Response, list]:
    """One logical call: the same Idempotency-Key on every try, retried on 408/429/5xx and connection errors
    (Power Automate's default policy, compressed in time); a 202's Location is followed."""
    headers = {"Idempotency-Key": key} if key else {}
    tries: list = []
    deadline = time.monotonic() + seconds
    while True:
        try:
            answer = client.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:
            tries.append(type(exc).__name__)
            wait = 0.2
        else:
            tries.append(answer.status_code)
            answer = follow(client, answer, deadline)
            if answer.status_code not in (408, 429) and answer.status_code < 500:
                return answer, tries
            wait = min(float(answer.headers.get("retry-after", 1)), RETRY_CAP_S)
        assert time.monotonic() < deadline, f"{method} {path}: no answer within {seconds} s: {tries}"
        time.sleep(wait)


# -- the journeys through https ---------------------------------------------------------------------------
def test_the_served_spec_names_https_and_the_proxys_host(rehearsal):
    spec = rehearsal.client.get("/swagger.json")
    assert spec.status_code == 200
    assert spec.json()["schemes"] == ["https"] and spec.json()["host"] == rehearsal.base.split("://")[1]
    assert rehearsal.client.get("/health").json()["mode"] == "live"


def test_only_the_proxy_is_reachable_and_only_for_public_host(rehearsal):
    """The instances listen on 127.0.0.1 (BIND_ADDRESS), not on every interface; the proxy answers only for
    PUBLIC_HOST (another Host - an address scan, a forged name - gets 421)."""
    for port in rehearsal.ports:
        listening = [line.split()[1] for table in ("/proc/net/tcp", "/proc/net/tcp6")
                     for line in Path(table).read_text().splitlines()[1:]
                     if line.split()[3] == "0A" and int(line.split()[1].rsplit(":", 1)[1], 16) == port]
        assert listening and all(a.startswith("0100007F:") for a in listening), listening
    port = rehearsal.base.rsplit(":", 1)[1]
    with rehearsal.new_client() as other:
        r = other.get(f"https://localhost:{port}/health", headers={"Host": f"elsewhere.example:{port}"})
    assert r.status_code == 421
    # live mode: the sandbox key is refused, the publisher's key accepted
    assert rehearsal.client.get("/connection", headers={"X-API-Key": "sandbox"}).status_code == 401
    assert rehearsal.client.get("/connection").json()["status"] == "ok"


def test_actions_through_https(rehearsal):
    email = f"reh-{uuid.uuid4().hex[:8]}@example.com"
    upsert, _ = pa_call(rehearsal.client, "PUT", "/contacts", {"contact": {"email": email}}, key=uuid.uuid4().hex)
    assert upsert.status_code == 200, upsert.text
    eid = upsert.json()["contact"]["externalId"]
    start, _ = pa_call(rehearsal.client, "POST", f"/automations/{WELCOME}/start", {"contact": {"email": email}},
                       key=uuid.uuid4().hex)
    assert start.status_code == 200, start.text
    runs = [r for r in rehearsal.sim("/__sim__/state")["runs"] if r["externalContactId"] == eid]
    assert [r["automationContactId"] for r in runs] == start.json()["automationContactIds"]
    job = rehearsal.client.get(f"/jobs/{start.json()['jobId']}")
    assert job.status_code == 200 and job.json()["status"] == "Completed"


def test_a_polling_trigger_followed_by_its_location(rehearsal):
    first = rehearsal.client.get("/triggers/contacts/added")
    assert first.status_code == 202, first.text
    location = first.headers["location"]
    assert location.startswith(rehearsal.base + "/triggers/contacts/added?state="), location
    email = f"reh-trigger-{uuid.uuid4().hex[:8]}@example.com"
    assert rehearsal.sim("/__sim__/signup", "POST", json={"email": email})
    delivered: list[str] = []
    for _ in range(10):  # each answer's Location is the next poll, wherever it lands
        assert location.startswith(rehearsal.base + "/"), location
        r = rehearsal.client.get(location)
        assert r.status_code in (200, 202), r.text
        location = r.headers["location"]
        if r.status_code == 200:
            delivered += [item["email"] for item in r.json()["value"]]
        elif delivered:
            break
    assert delivered == [email]


def test_a_bulk_call_answers_202_and_its_location_gives_the_result(rehearsal):
    """Each stop takes 0.6 s at the platform: four of them pass SYNC_DEADLINE_SECONDS (1 s), so the call answers
    202 + Location (through the proxy's https address) and the Location, polled, gives the result."""
    email = f"reh-bulk-{uuid.uuid4().hex[:8]}@example.com"
    ids = []
    for _ in range(4):
        r, _ = pa_call(rehearsal.client, "POST", f"/automations/{WELCOME}/start",
                       {"contact": {"email": email}, "createContactIfMissing": True}, key=uuid.uuid4().hex)
        ids += r.json()["automationContactIds"]
    rehearsal.sim("/__sim__/faults", "POST", json={"latency_ms": 600, "path_prefix": "/integrationservice/automation/stop/"})
    try:
        first = rehearsal.client.post("/automation-runs/stop", json={"automationContactIds": ids},
                                      headers={"Idempotency-Key": uuid.uuid4().hex})
        assert first.status_code == 202, first.text
        assert first.headers["location"].startswith(rehearsal.base + "/jobs/"), first.headers["location"]
        done = follow(rehearsal.client, first, time.monotonic() + 60)
    finally:
        rehearsal.sim("/__sim__/faults", "DELETE")
    assert done.status_code == 200, done.text
    assert sorted(x["automationContactId"] for x in done.json()["results"] if x["result"] == "STOPPED") == sorted(ids)
    stopped = {r["automationContactId"] for r in rehearsal.sim("/__sim__/state")["runs"] if r["status"] == "STOPPED"}
    assert set(ids) <= stopped


def test_a_rolling_restart_serves_throughout(rehearsal):
    """SIGHUP (``systemctl reload``: an update, a changed setting, a renewed certificate): nginx reloads and the
    instances restart one at a time. Reads never fail (nginx sends a GET that met a stopping instance to the
    other); a write that met one at the wrong moment is retried with its key and applied once."""
    r = rehearsal
    old = {port: r.instance_pid(port) for port in r.ports}
    before = r.sim("/__sim__/stats")["score_changes"]
    email, reads, writes = DEMO.emails["piet"], [], []
    r.proc.send_signal(signal.SIGHUP)
    done = lambda: "rolling restart done" in r.output()  # noqa: E731
    i = 0
    with r.new_client() as client:
        while not done():
            reads.append(client.get("/connection").status_code)
            answer, tries = pa_call(client, "POST", "/contacts/scores", key=uuid.uuid4().hex,
                                    body={"contact": {"email": email}, "tag": f"roll{i}", "score": 1, "mode": "increase"})
            writes.append((answer.status_code, tries))
            i += 1
            assert len(reads) < 2000, r.output()[-3000:]
    assert {port: r.instance_pid(port) for port in r.ports}.keys() == old.keys()
    assert all(r.instance_pid(port) != pid for port, pid in old.items())
    assert set(reads) == {200} and {status for status, _ in writes} == {200}
    assert r.sim("/__sim__/stats")["score_changes"] - before == len(writes)
    r.notes["rolling_restart"] = {"reads": len(reads), "writes": len(writes),
                                  "writes_retried": sum(1 for _, tries in writes if len(tries) > 1)}


# -- an instance dies under load --------------------------------------------------------------------------
@dataclass
class Call:
    kind: str  # "score" or "start"
    key: str
    email: str
    tag: str = ""
    delta: int = 0
    answer: httpx.Response | None = None
    tries: list = field(default_factory=list)


def test_an_instance_killed_under_load_loses_no_call_and_doubles_none(rehearsal):
    r = rehearsal
    victim, survivor = r.ports[1], r.ports[0]
    victim_pid = r.instance_pid(victim)
    scored = [DEMO.emails[name] for name in ("jan", "anna")]
    calls: list[Call] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = itertools.count()
    run = uuid.uuid4().hex[:6]

    def next_call() -> Call:
        i = next(counter)
        if i % 2:
            call = Call("score", uuid.uuid4().hex, scored[i % 4 // 2], tag=f"reh{run}x{i}", delta=i % 9 + 1)
        else:
            call = Call("start", uuid.uuid4().hex, f"reh-{run}-{i}@example.com")
        with lock:
            calls.append(call)
        return call

    def caller() -> None:
        with r.new_client() as client:
            while not stop.is_set():
                call = next_call()
                if call.kind == "score":
                    body = {"contact": {"email": call.email}, "tag": call.tag, "score": call.delta, "mode": "increase"}
                    call.answer, call.tries = pa_call(client, "POST", "/contacts/scores", body, key=call.key)
                else:
                    body = {"contact": {"email": call.email}, "createContactIfMissing": True}
                    call.answer, call.tries = pa_call(client, "POST", f"/automations/{WELCOME}/start", body,
                                                      key=call.key)

    def answered() -> int:
        with lock:
            return sum(1 for c in calls if c.answer is not None)

    before = r.sim("/__sim__/stats")
    # every platform call of the load takes 40 ms: the kill catches some calls while the platform is applying them
    r.sim("/__sim__/faults", "POST", json={"latency_ms": 40, "methods": ["POST"],
                                           "path_regex": r"^/integrationservice/(automation/trigger|contact/)"})
    began = time.time()
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(caller) for _ in range(6)]
        _wait_for(lambda: answered() >= 40, "40 calls answered before the kill", 60)
        killed_at = time.time()
        os.killpg(victim_pid, signal.SIGKILL)  # the whole instance: its gunicorn master and both workers
        answered_at_kill = answered()

        def victim_back() -> bool:
            back = [e for e in r.access() if e["msec"] > killed_at and e["upstream"].endswith(f":{victim}")
                    and e["status"] < 500]
            return len(back) >= 10 and answered() >= answered_at_kill + 60

        _wait_for(victim_back, "the killed instance restarted and answered again", 90)
        stop.set()
        for f in futures:
            f.result()
    load_seconds = time.time() - began
    r.sim("/__sim__/faults", "DELETE")

    state = r.sim("/__sim__/state")
    stats = r.sim("/__sim__/stats")
    eid_of = {email: eid for eid, email in state["contacts"].items()}
    runs_of: dict[str, list[str]] = {}
    for run_ in state["runs"]:
        if run_["automationId"] == DEMO.automation_ids["welcome"]:
            runs_of.setdefault(run_["externalContactId"], []).append(run_["automationContactId"])
    unknown, retried = [], [c for c in calls if len(c.tries) > 1]
    for c in calls:
        assert c.answer is not None
        if c.kind == "score":  # read back when its answer was lost: applied exactly once, and answered 200
            assert c.answer.status_code == 200, (c.tries, c.answer.text)
            assert state["tags"][eid_of[c.email]][c.tag] == c.delta, c
            continue
        runs = runs_of.get(eid_of.get(c.email, ""), [])
        if c.answer.status_code == 200:
            assert runs == c.answer.json()["automationContactIds"] and len(runs) == 1, (c.tries, runs)
        else:  # a start that may have reached the platform when its instance died: said so, never repeated
            assert c.answer.status_code == 409 and c.answer.json()["code"] == "OUTCOME_UNKNOWN", c.answer.text
            assert len(runs) <= 1
            unknown.append(c)
    scores = [c for c in calls if c.kind == "score"]
    # no increase sent twice, even by a job resumed on the other instance
    assert stats["score_changes"] - before["score_changes"] == len(scores)

    entries = [e for e in r.access() if e["msec"] >= began]
    by_phase: dict[str, dict[str, int]] = {}
    back_at = min(e["msec"] for e in entries if e["msec"] > killed_at and e["upstream"].endswith(f":{victim}")
                  and e["status"] < 500)
    for e in entries:
        phase = "before" if e["msec"] < killed_at else "down" if e["msec"] < back_at else "back"
        who = "survivor" if e["upstream"].endswith(f":{survivor}") else "victim" if e["upstream"] else "proxy"
        by_phase.setdefault(phase, {}).setdefault(who, 0)
        by_phase[phase][who] += 1
    assert by_phase["before"].get("victim", 0) > 0 and by_phase["before"].get("survivor", 0) > 0
    assert by_phase["down"].get("survivor", 0) > 0
    assert r.instance_pid(victim) != victim_pid  # what answered again is the instance the supervisor restarted
    output = r.output()
    r.notes.update(load_seconds=round(load_seconds, 1), calls=len(calls), scores=len(scores),
                   starts=len(calls) - len(scores), retried=len(retried), retries=[c.tries for c in retried],
                   outcome_unknown=len(unknown),
                   outcome_unknown_applied=sum(1 for c in unknown if runs_of.get(eid_of.get(c.email, ""))),
                   runs=sum(len(runs_of.get(eid_of.get(c.email, ""), [])) for c in calls if c.kind == "start"),
                   score_changes=stats["score_changes"] - before["score_changes"],
                   settled_by_read_back=output.count("settled by read-back"), resumed=output.count(": resumed ("),
                   answers=by_phase)
    print("rehearsal:", json.dumps(r.notes))


def test_a_graceful_stop_stops_everything(rehearsal):
    """Runs last: SIGTERM to the supervisor (systemd's stop) ends nginx and both instances, exit 0, nothing left,
    no traceback anywhere in the output."""
    groups = {int(p) for p in re.findall(r"started, pid (\d+)", rehearsal.output())}
    rehearsal.proc.send_signal(signal.SIGTERM)
    assert rehearsal.proc.wait(60) == 0, rehearsal.output()[-3000:]
    for pgid in groups:
        _wait_for(lambda pgid=pgid: _group_gone(pgid), f"process group {pgid} gone", 30)
    text = rehearsal.output()
    assert "Traceback" not in text and "deploy: stopped" in text


def _group_gone(pgid: int) -> bool:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] != "Z":
                return False
    return True
