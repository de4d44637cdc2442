"""Load from wrk (C, one process, its own cores' worth of CPU measured): pre-signed unique webhooks.

wrk comes from the distribution (`apt-get install wrk` on Debian and Ubuntu, `brew install wrk`
on macOS). The requests are signed here, ahead of the run, into a file that
benchmarks/signed_requests.lua sends once each; a round never reuses another round's file.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _harness import ROOT, Process, signed_requests

from inbox.simulate import INBOUND_PATH
from tests.support.servers import free_port

SCRIPT = Path(__file__).with_name("signed_requests.lua")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian, Ubuntu) or brew install wrk (macOS)")
    return found


def write_requests(path: Path, public_url: str, count: int, redelivery_ratio: float = 0.1) -> int:
    """`count` signed inbound webhooks into `path`, one a line; every round(1/ratio)-th line repeats
    an earlier line of the file (a deliberate redelivery). Returns the number of distinct SIDs."""
    lines = [
        f"{headers['X-Twilio-Signature']}\t{body.decode()}"
        for body, headers in signed_requests(public_url, count, redelivery_ratio)
    ]
    path.write_text("\n".join(lines) + "\n")
    return len(set(lines))


@dataclass
class WrkResult:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    wrk_cpu: float  # seconds of CPU wrk itself used
    server_cpu: float  # seconds of CPU the server's processes used

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        return (
            f"{self.name:<30} {self.throughput:7.0f} req/s   p50 {self.p50_ms:6.1f} ms   p99 {self.p99_ms:6.1f} ms   "
            f"errors {self.errors:<3} server {1000 * self.server_cpu / self.requests:5.2f} ms CPU/req   "
            f"wrk {1000 * self.wrk_cpu / self.requests:5.2f} ms CPU/req"
        )


def run_wrk(
    name: str,
    target: str,
    requests_file: Path,
    connections: int,
    *,
    servers: list[Process],
    threads: int = 1,
    targets: list[str] | None = None,
) -> WrkResult:
    """Every line of `requests_file` once, over `connections` keep-alive connections (the peer
    closes each after one answer; wrk reconnects). `targets` spreads threads over processes."""
    env = {**os.environ, "WRK_REQUESTS": str(requests_file), "WRK_THREADS": str(threads)}
    if targets:
        env["WRK_TARGETS"] = " ".join(t.removeprefix("http://") for t in targets)
    command = [wrk_binary(), "-t", str(threads), "-c", str(connections), "-d", "600s", "--timeout", "10s"]
    command += ["-s", str(SCRIPT), target.rstrip("/") + INBOUND_PATH]
    cpu_before = [process_tree_cpu(server.process.pid) for server in servers]
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
        assert wrk.stdout is not None
        output, spent = [], 0
        for line in wrk.stdout:  # wrk runs for -d whatever happens: end it when every thread is spent
            output.append(line)
            spent += line.startswith("WRK_SPENT")
            if spent == threads and wrk.poll() is None:
                spent += 1
                wrk.send_signal(signal.SIGINT)
        stderr = wrk.stderr.read() if wrk.stderr else ""
        returncode = wrk.wait(timeout=60)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = sum(process_tree_cpu(s.process.pid) - b for s, b in zip(servers, cpu_before, strict=True))
    report = next((line for line in output if line.startswith("WRK_JSON ")), None)
    if returncode != 0 or report is None:
        raise SystemExit(f"wrk failed ({returncode}): {''.join(output)}\n{stderr}")
    figures = json.loads(report.removeprefix("WRK_JSON "))
    lines = requests_file.read_text().count("\n")
    if figures["sent"] != lines:  # every line once: no more (wrap-around), no fewer (cut short)
        raise SystemExit(f"wrk sent {figures['sent']} of the {lines} requests of {requests_file}")
    errors = sum(figures[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return WrkResult(
        name,
        figures["requests"],
        figures["duration_us"] / 1e6,
        figures["p50_us"] / 1000,
        figures["p90_us"] / 1000,
        figures["p99_us"] / 1000,
        errors,
        wrk_cpu,
        server_cpu,
    )


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (gunicorn's worker)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += process_tree_cpu(int(child))
    except FileNotFoundError:  # gone, or not Linux: no figure
        pass
    return total


def start_bare_asgi() -> Process:
    """benchmarks/peers/bare_asgi.py under uvicorn with the inbox's server settings."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log"),
            *("--log-level", "warning", "--host", "127.0.0.1", "--port", str(port), "benchmarks.peers.bare_asgi:app"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(url + INBOUND_PATH, timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return Process("bare ASGI", url, process)


def request_folder() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="inbox-wrk-")
