"""Moved: the helpers are in :mod:`bench.processes` (simulator, service, baseline, /proc), :mod:`bench.load`
(load generators) and :mod:`bench.report` (tables, machine info). These names stay importable from here for
branches written before the split; new code imports the three modules. Delete once nothing imports it."""

from bench.load import LoadResult, RawConnection, RawResponse, TransportError, closed_loop, pct, threaded_loop
from bench.processes import (
    API_KEY,
    HOST,
    PYTHON,
    ROOT,
    RssSampler,
    Server,
    Simulator,
    Stack,
    children,
    clean_env,
    connections_per_worker,
    free_port,
    peak_rss_mb,
    rss_mb,
    start_baseline,
    start_service,
    start_simulator,
    temp_postgres_database,
    wait_ready,
    web_command,
    worker_pids,
)
from bench.report import machine_info, md_table, report

_clean_env = clean_env

__all__ = ["API_KEY", "HOST", "PYTHON", "ROOT", "LoadResult", "RawConnection", "RawResponse", "RssSampler", "Server",
           "Simulator", "Stack", "TransportError", "children", "clean_env", "closed_loop", "connections_per_worker",
           "free_port", "machine_info", "md_table", "pct", "peak_rss_mb", "report", "rss_mb", "start_baseline",
           "start_service", "start_simulator", "temp_postgres_database", "threaded_loop", "wait_ready", "web_command",
           "worker_pids"]
