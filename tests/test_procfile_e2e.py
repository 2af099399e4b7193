"""End to end: the service started exactly as the Procfile starts it (gunicorn, 2 uvicorn workers, sandbox mode
with one shared simulator process), driven over HTTP the way a flow maker's three core journeys go; at the end
it is stopped with SIGTERM and its whole output is read: nothing a user cannot act on, one line for the
migrations, no error on the way down, no control socket, no simulator left."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from service.sandbox.spotler import DEMO

ROOT = Path(__file__).resolve().parent.parent
KEY = {"X-API-Key": "sandbox"}
WELCOME = DEMO.automations["welcome"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line[len("web:"):].strip()
    raise AssertionError("Procfile has no web: line")


class Running:
    """The service process, its output file and its (private) home directory."""

    def __init__(self, proc: subprocess.Popen, log: Path, home: Path) -> None:
        self.proc, self.log, self.home = proc, log, home

    def stop(self) -> str:
        """SIGTERM the master (as a platform stops a process) and return everything it printed."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise
        return self.log.read_text()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    port = _free_port()
    workdir = tmp_path_factory.mktemp("e2e")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPOTLER_", "PIGGY_", "SPOKI_", "API_KEYS", "SANDBOX_", "DATABASE_URL",
                                "XDG_RUNTIME_DIR"))}
    env.update(PORT=str(port), WEB_CONCURRENCY="2", PROVIDER="spotler", HOME=str(workdir), ENV_FILE=os.devnull,
               DATABASE_URL=f"sqlite:///{workdir}/ledger.db", SANDBOX_STATE_DIR=str(workdir / "sandbox"),
               PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    (workdir / "metrics").mkdir()
    (workdir / "metrics" / "counter_999999999.db").write_bytes(b"stale")  # a previous run's: emptied at start
    log = workdir / "output.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["sh", "-c", "exec " + _web_command()], cwd=ROOT, env=env, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    service = Running(proc, log, workdir)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=base, timeout=10) as client:
        while True:  # readiness: poll /health until gunicorn's workers answer (bounded by the deadline)
            if proc.poll() is not None:
                raise AssertionError(f"service exited: {log.read_text()[-3000:]}")
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError("service did not become ready within 60 s")
            time.sleep(0.2)
        client.sandbox_state_dir = workdir / "sandbox"
        service.client = client
        yield service
    service.stop()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever a failed test left behind
    except ProcessLookupError:
        pass


@pytest.fixture
def service(running):
    return running.client


def test_health_says_sandbox(service):
    body = service.get("/health").json()
    assert body["mode"] == "sandbox" and body["provider"] == "spotler"


def test_connection_needs_the_key(service):
    assert service.get("/connection").status_code == 401
    r = service.get("/connection", headers=KEY)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert service.get("/nope", headers=KEY).status_code == 404


def start(service, contact, **body):
    return service.post(f"/automations/{WELCOME}/start", json={"contact": contact, **body},
                        headers={**KEY, "Idempotency-Key": uuid.uuid4().hex, "Connection": "close"})


def test_journeys_start_with_fields_stop_by_id_stop_all(service):
    # 1. start with fields, get an automationContactId
    r = start(service, {"email": DEMO.emails["jan"]}, fieldsText="voucherCode=WELCOME10;recommended={P-100,P-200}")
    assert r.status_code == 200, r.text
    run_id = r.json()["automationContactId"]
    # 2. stop that run by id
    stop = service.post("/automation-runs/stop", json={"automationContactIds": run_id}, headers=KEY)
    assert stop.status_code == 200, stop.text
    assert stop.json()["results"] == [{"automationContactId": run_id, "result": "STOPPED"}]
    # 3. stop all runs for the contact
    ids = {start(service, {"email": DEMO.emails["anna"]}).json()["automationContactId"] for _ in range(2)}
    r = service.post(f"/automations/{WELCOME}/stop", json={"contact": {"email": DEMO.emails["anna"]}}, headers=KEY)
    assert r.status_code == 200, r.text
    assert {x["automationContactId"] for x in r.json()["results"] if x["result"] == "STOPPED"} == ids


def test_every_worker_sees_one_sandbox_account(service):
    """A contact created through one worker is known to the other (one shared simulator process). Every call
    opens a new connection, so the calls spread over both workers."""
    for _ in range(12):
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        created = start(service, {"email": email}, createContactIfMissing=True)
        assert created.status_code == 200, created.text
        again = start(service, {"email": email})  # may land on the other worker
        assert again.status_code == 200, again.text
    job = service.get(f"/jobs/{created.json()['jobId']}", headers=KEY)
    assert job.status_code == 200 and job.json()["status"] == "Completed"


def test_a_trigger_polled_the_way_the_platform_polls(service):
    """The first call answers 202 with an absolute Location (the proxy's address); the platform polls that URL,
    on any worker, until it answers 200 with the new contact, then 202 again."""
    proxy = {**KEY, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "flows.example.com", "Connection": "close"}
    first = service.get("/triggers/contacts/added", headers=proxy)
    assert first.status_code == 202, first.text
    assert first.headers["location"].startswith("https://flows.example.com/triggers/contacts/added?state=")
    email = f"e2e-trigger-{uuid.uuid4().hex[:8]}@example.com"
    assert service.put("/contacts", json={"contact": {"email": email}}, headers=KEY).status_code == 200
    location, delivered = first.headers["location"], []
    for _ in range(5):  # the platform follows each new Location (Retry-After 0 would mean: at once)
        parts = urlsplit(location)
        r = service.get(parts.path + "?" + parts.query, headers=proxy)
        assert r.status_code in (200, 202), r.text
        location = r.headers["location"]
        if r.status_code == 202:
            break
        delivered += [i["email"] for i in r.json()["value"]]
    assert delivered == [email]


def test_entra_id_journey_start_for_a_dataverse_record_and_see_the_note(service):
    """The Entra ID walk-through of docs/sandbox.md: a sandbox user token from the documented command, an automation
    started for a Dataverse record id (no contact given), and the note on the Dataverse simulator."""
    env = {**os.environ, "SANDBOX_STATE_DIR": str(service.sandbox_state_dir)}
    token = subprocess.run([sys.executable, "-m", "service.sandbox.entra", "token"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    record = "0c0a0001-0000-4000-8000-00000000c001"
    r = service.post(f"/automations/{WELCOME}/start", json={"regarding": {"table": "contact", "id": record}},
                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    assert r.json()["timeline"]["status"] == "written"
    state = json.loads((service.sandbox_state_dir / "microsoft.json").read_text())
    notes = httpx.get(f"{state['dataverseUrl']}/__sim__/notes", params={"regarding": record},
                      verify=ssl.create_default_context(cafile=state["caBundle"]), timeout=10).json()["value"]
    assert [n["annotationid"] for n in notes] == [r.json()["timeline"]["noteId"]]
    assert r.json()["jobId"] in notes[0]["notetext"]


def _worker_of_each_connection(port: int, client_ports: list[int]) -> list[int]:
    """For each client port, the pid of the process holding the server end of that connection (/proc)."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                parts = line.split()
                local, remote, inode = parts[1], parts[2], parts[9]
                if int(local.rsplit(":", 1)[1], 16) == port:
                    inodes[int(remote.rsplit(":", 1)[1], 16)] = inode
    owners = {}
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    owners[link[8:-1]] = pid
        except OSError:
            continue
    return [owners.get(inodes.get(p, ""), 0) for p in client_ports]


def test_connections_opened_at_once_spread_over_the_workers(running):
    """The Procfile's worker class (service.workers.BalancedUvicornWorker) takes a new connection only while
    no other worker holds fewer: 16 keep-alive connections opened at once end up on both workers (a plain
    uvicorn worker took a whole burst: 32/0 was measured)."""
    owners = _health_burst(int(running.client.base_url.port), 16)
    counts = sorted(owners.count(pid) for pid in set(owners))
    assert 0 not in owners and len(counts) == 2, owners
    assert counts[0] >= 4, counts  # balanced: 8/8 ideally; a plain worker gives 16/0


def _health_burst(port: int, n: int) -> list[int]:
    """``n`` keep-alive connections opened at once, each answered one GET /health: the worker pid of each."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    try:
        for c in conns:
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
        return _worker_of_each_connection(port, [c.getsockname()[1] for c in conns])
    finally:
        for c in conns:
            c.close()


def _requests_counted(text: str, operation: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "marketing_actions_requests_total" and s.labels.get("operation") == operation)


def test_one_scrape_adds_up_the_counts_of_both_workers(running):
    """GET /metrics on either worker answers the sum over both (prometheus_client's multiprocess mode, the
    folder made by the gunicorn master): 16 calls that landed on two pids are all in one scrape."""
    metrics_dir = running.home / "metrics"
    assert not (metrics_dir / "counter_999999999.db").exists()  # the master emptied the folder at start
    before = _requests_counted(running.client.get("/metrics", headers={"Connection": "close"}).text, "Health")
    owners = _health_burst(int(running.client.base_url.port), 16)
    pids = set(owners)
    assert 0 not in pids and len(pids) == 2, owners  # the calls hit both workers
    files = {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("counter_*.db")}
    assert pids <= files, (pids, files)  # each worker wrote its own counts
    for _ in range(2):  # whichever worker answers the scrape, it holds both workers' counts
        r = running.client.get("/metrics", headers={"Connection": "close"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert _requests_counted(r.text, "Health") - before == 16


def test_clean_stop_and_quiet_output(running):
    """Runs last in this module: stop the service and read all it printed from start to stop."""
    assert not (running.home / ".gunicorn").exists()  # no shared control socket ($HOME/.gunicorn/gunicorn.ctl)
    text = running.stop()
    assert running.proc.returncode == 0, text[-3000:]
    lines = text.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    plain = [line for line in lines if not line.startswith("{")]
    # nothing to act on that the user cannot act on: no warnings from libraries, no tracebacks, no errors
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL") or r["logger"].startswith("alembic")]
    assert not [r for r in records if r["level"] == "WARNING" and r["logger"] != "service"]
    assert not [r for r in records if "rror" in r["msg"] or "Bad file descriptor" in r["msg"]]
    for needle in ("Warning", "Traceback", "Error", "error", "Bad file descriptor", "install"):
        assert not [line for line in plain if needle in line], [line for line in plain if needle in line]
    # the migrations: one line per worker that opened the ledger, none from alembic itself
    migrations = [r for r in records if r["msg"] == "ledger database ready"]
    assert 1 <= len(migrations) <= 2 and all(r["schemaRevision"] for r in migrations)
    # the sandbox simulators (platform, Entra ID + Dataverse) went with the service
    started = re.search(r"sandbox for spotler: platform at \S+ \(pid (\d+)\).*Entra ID at .*\(pid (\d+)", text)
    assert started, text[:3000]
    deadline = time.monotonic() + 30
    for pid in map(int, started.groups()):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "a sandbox simulator outlived the service"
            time.sleep(0.05)
