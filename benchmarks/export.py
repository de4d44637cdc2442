"""The history export beside its ceiling: `inbox export --format csv` against `psql \\copy … CSV`.

    uv run python benchmarks/export.py                 # 1,000,000 messages in PostgreSQL, 1,000,000 in SQLite
    uv run python benchmarks/export.py --rows 100000   # a quick run
    uv run python benchmarks/export.py --sqlite-rows 0 # PostgreSQL only

PostgreSQL: a fresh database is created beside the admin URL's (INBOX_BENCH_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/test), migrated with inbox.db.migrate, filled with INSERT …
SELECT generate_series (customers, conversations, messages with formula-looking, multi-line,
emoji and media rows mixed in), and dropped at the end. The inbox's export runs as `inbox export`
in a subprocess (the same code path, writing to a temporary file); its peak RSS comes from
os.wait4. The ceiling is psql's `\\copy (SELECT the same columns, joined the same way) TO file CSV`,
which does no neutralising, no ISO formatting and no media flattening, so it is a true upper bound.

Both sides run once unmeasured (page cache; the inbox's bytecode cache, kept in the temporary
directory), then three times each, alternating; the best time of each counts.

SQLite: the same data through a recursive CTE, then the same `inbox export`, beside the sqlite3
shell's `.mode csv` dump of the same SELECT.

Targets: ≥ 0.3× of COPY's rows/s and a peak RSS ≤ 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _harness import asyncpg_url, pg_execute  # noqa: E402 - benchmarks/ is the script's own folder

ADMIN_URL = os.environ.get("INBOX_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RATIO_TARGET = 0.3
RSS_TARGET_MB = 150
ROUNDS = 3  # each side runs this many times, alternating; the best time counts

# The export's columns, for the ceilings (psql and sqlite3 write timestamps their own way).
CEILING_SELECT = """
SELECT m.id AS message_id, m.sid, m.conversation_id,
       COALESCE(NULLIF(cu.name, ''), cu.whatsapp_profile_name) AS customer_name, cu.phone AS customer_phone,
       m.channel, m.direction, m.from_addr AS "from", m.to_addr AS "to", s.email AS sent_by, m.body,
       m.media AS media_urls, m.status, m.error_code, m.created_at, m.updated_at
FROM messages m
JOIN conversations c ON c.id = m.conversation_id
JOIN customers cu ON cu.id = c.customer_id
LEFT JOIN staff s ON s.id = m.staff_id
ORDER BY m.id
""".strip()

# Bodies: ordinary text most of the time, with the awkward cases mixed in.
PG_BODY = """
CASE
  WHEN n % 97 = 0 THEN '=HYPERLINK("http://evil.example/' || n || '")'
  WHEN n % 89 = 0 THEN '+' || n || ' is my other number'
  WHEN n % 13 = 0 THEN 'Line one, with "quotes"' || chr(10) || 'line two 👋🏽 ' || n
  WHEN n % 7 = 0 THEN 'Olá! Posso marcar para sexta-feira às 10h? Obrigada 😀 #' || n
  WHEN n % 5 = 0 THEN 'Thanks, see you then.'
  ELSE 'Hi, is my repair ready yet? Order ' || n || ', the phone with the cracked screen.'
END
"""

PG_FILL = [
    """INSERT INTO staff (email, name, role, password_hash, created_at)
       SELECT 'staff' || n || '@example.com', 'Staff ' || n, CASE WHEN n = 1 THEN 'manager' ELSE 'receptionist' END,
              'not-a-hash', now()
       FROM generate_series(1, 5) AS n""",
    """INSERT INTO customers (phone, name, whatsapp_profile_name, created_at)
       SELECT '+1415' || lpad(n::text, 7, '0'),
              CASE WHEN n % 3 = 0 THEN NULL ELSE 'Customer ' || n END,
              CASE WHEN n % 3 = 0 THEN 'WA Name ' || n END, now()
       FROM generate_series(1, :customers) AS n""",
    """INSERT INTO conversations (customer_id, status, last_activity_at, created_at)
       SELECT id, 'open', now(), now() FROM customers ORDER BY id""",
    f"""INSERT INTO messages (conversation_id, sid, direction, channel, from_addr, to_addr, body, media, status,
                              error_code, staff_id, attempts, needs_reconcile, probable_opt_out, created_at, updated_at)
       SELECT 1 + (n % :customers),
              (CASE WHEN n % 50 = 0 THEN 'MM' ELSE 'SM' END) || md5(n::text),
              CASE WHEN n % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
              CASE WHEN n % 4 = 1 THEN 'whatsapp' ELSE 'sms' END,
              CASE WHEN n % 2 = 0 THEN phone ELSE '+15005550006' END,
              CASE WHEN n % 2 = 0 THEN '+15005550006' ELSE phone END,
              {PG_BODY},
              CASE WHEN n % 50 = 0 THEN ('[{{"url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM' || n
                     || '/Media/ME' || n || '", "content_type": "image/jpeg"}}]')::json ELSE '[]'::json END,
              CASE WHEN n % 2 = 0 THEN 'received' WHEN n % 101 = 0 THEN 'undelivered' ELSE 'delivered' END,
              CASE WHEN n % 2 = 1 AND n % 101 = 0 THEN 30007 END,
              CASE WHEN n % 2 = 1 THEN 1 + n % 5 END,
              0, false, false,
              timestamptz '2024-01-01 00:00:00+00' + n * interval '1 second' + (n % 1000) * interval '1 millisecond',
              timestamptz '2024-01-01 00:00:05+00' + n * interval '1 second'
       FROM generate_series(1, :rows) AS n
       JOIN customers cu ON cu.id = 1 + (n % :customers)""",
    "ANALYZE",
]

SQLITE_BODY = PG_BODY.replace("chr(10)", "char(10)")

SQLITE_FILL = [
    """WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 5)
       INSERT INTO staff (email, name, role, password_hash, created_at)
       SELECT 'staff' || n || '@example.com', 'Staff ' || n, CASE WHEN n = 1 THEN 'manager' ELSE 'receptionist' END,
              'not-a-hash', '2024-01-01 00:00:00.000000' FROM seq""",
    """WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :customers)
       INSERT INTO customers (phone, name, whatsapp_profile_name, created_at)
       SELECT '+1415' || printf('%07d', n), CASE WHEN n % 3 = 0 THEN NULL ELSE 'Customer ' || n END,
              CASE WHEN n % 3 = 0 THEN 'WA Name ' || n END, '2024-01-01 00:00:00.000000' FROM seq""",
    """INSERT INTO conversations (customer_id, status, last_activity_at, created_at)
       SELECT id, 'open', '2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000000' FROM customers ORDER BY id""",
    f"""WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :rows)
       INSERT INTO messages (conversation_id, sid, direction, channel, from_addr, to_addr, body, media, status,
                             error_code, staff_id, attempts, needs_reconcile, probable_opt_out, created_at, updated_at)
       SELECT 1 + (n % :customers),
              (CASE WHEN n % 50 = 0 THEN 'MM' ELSE 'SM' END) || printf('%032x', n),
              CASE WHEN n % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
              CASE WHEN n % 4 = 1 THEN 'whatsapp' ELSE 'sms' END,
              CASE WHEN n % 2 = 0 THEN '+1415' || printf('%07d', 1 + n % :customers) ELSE '+15005550006' END,
              CASE WHEN n % 2 = 0 THEN '+15005550006' ELSE '+1415' || printf('%07d', 1 + n % :customers) END,
              {SQLITE_BODY},
              CASE WHEN n % 50 = 0 THEN '[{{"url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM' || n
                     || '/Media/ME' || n || '", "content_type": "image/jpeg"}}]' ELSE '[]' END,
              CASE WHEN n % 2 = 0 THEN 'received' WHEN n % 101 = 0 THEN 'undelivered' ELSE 'delivered' END,
              CASE WHEN n % 2 = 1 AND n % 101 = 0 THEN 30007 END,
              CASE WHEN n % 2 = 1 THEN 1 + n % 5 END,
              0, 0, 0,
              strftime('%Y-%m-%d %H:%M:%S', '2024-01-01 00:00:00', '+' || n || ' seconds') || printf('.%06d', (n % 1000) * 1000),
              strftime('%Y-%m-%d %H:%M:%S', '2024-01-01 00:00:05', '+' || n || ' seconds') || '.000000'
       FROM seq""",
    "ANALYZE",
]


def plain_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def fill(url: str, statements: list[str], **params: int) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                if statement == "ANALYZE":
                    continue
                await connection.execute(text(statement), params)
        if url.startswith("postgresql"):
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text("ANALYZE"))
        else:
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


def inbox_export(database_url: str, target: Path, fmt: str = "csv") -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, the command's stderr) of `inbox export` in a subprocess.

    Its bytecode is cached under the run's temporary directory, as an installed inbox has it
    (with PYTHONDONTWRITEBYTECODE every start would compile SQLAlchemy afresh, about a second).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INBOX_", "TWILIO_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPYCACHEPREFIX"] = str(target.parent / "pycache")
    env["INBOX_DATABASE_URL"] = database_url
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "inbox.cli", "export", "--format", fmt, "-o", str(target)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stderr = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"inbox export failed ({process.returncode}): {stderr}")
    return seconds, usage.ru_maxrss / 1024, stderr.strip()  # ru_maxrss is in KiB on Linux


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def interleaved(ceiling, inbox, rounds: int = ROUNDS):
    """The best of `rounds` runs of each, taken in turn, so a burst of load elsewhere on the
    machine hurts both sides alike: (best ceiling seconds, every inbox run)."""
    ceilings, runs = [], []
    for _ in range(rounds):
        ceilings.append(ceiling())
        runs.append(inbox())
    return min(ceilings), runs


def report(
    label: str,
    rows: int,
    inbox_seconds: float,
    ceiling_name: str,
    ceiling_seconds: float,
    rss: float,
    sizes: tuple[int, int],
    extra: list[tuple[str, float]],
) -> bool:
    inbox_rate, ceiling_rate = rows / inbox_seconds, rows / ceiling_seconds
    ratio = inbox_rate / ceiling_rate
    print(f"\n{label}: {rows:,} messages")
    print(f"  inbox export (csv)  {inbox_seconds:7.2f} s  {inbox_rate:>11,.0f} rows/s  {sizes[0] / 1e6:8.1f} MB")
    print(f"  {ceiling_name:<19} {ceiling_seconds:7.2f} s  {ceiling_rate:>11,.0f} rows/s  {sizes[1] / 1e6:8.1f} MB")
    for name, seconds in extra:
        print(f"  inbox export ({name}){' ' * (6 - len(name))}{seconds:7.2f} s  {rows / seconds:>11,.0f} rows/s")
    ok_ratio, ok_rss = ratio >= RATIO_TARGET, rss <= RSS_TARGET_MB
    print(f"  ratio inbox/ceiling {ratio:.2f}x  (target >= {RATIO_TARGET}x: {'met' if ok_ratio else 'MISSED'})")
    print(f"  inbox peak RSS      {rss:.0f} MB  (target <= {RSS_TARGET_MB} MB: {'met' if ok_rss else 'MISSED'})")
    return ok_ratio and ok_rss


def bench_postgres(rows: int, workdir: Path) -> bool:
    from inbox.db import migrate

    admin = asyncpg_url(ADMIN_URL)
    name = f"inbox_bench_{uuid.uuid4().hex[:10]}"
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        migrate(url)
        started = time.perf_counter()
        asyncio.run(fill(url, PG_FILL, rows=rows, customers=max(1, rows // 50)))
        print(f"PostgreSQL: generated {rows:,} messages in {time.perf_counter() - started:.1f} s")
        copy_file, inbox_file = workdir / "pg-copy.csv", workdir / "pg-inbox.csv"
        # Warm both paths once (page cache, plan) on the same data, then measure.
        copy = ["psql", plain_url(url), "-X", "-q", "-c", f"\\copy ({CEILING_SELECT}) TO '{copy_file}' CSV HEADER"]
        timed(copy)  # warm the page cache
        inbox_export(url, inbox_file)  # and the bytecode cache
        copy_seconds, runs = interleaved(lambda: timed(copy), lambda: inbox_export(url, inbox_file))
        seconds, _rss, stderr = min(runs)
        if stderr != f"exported {rows} messages to {inbox_file}":
            raise SystemExit(f"unexpected output from inbox export: {stderr!r}")
        extra = [(fmt, inbox_export(url, workdir / f"pg-inbox.{fmt}", fmt)[0]) for fmt in ("ndjson", "json")]
        return report(
            "PostgreSQL",
            rows,
            seconds,
            "psql \\copy CSV",
            copy_seconds,
            max(r[1] for r in runs),
            (inbox_file.stat().st_size, copy_file.stat().st_size),
            extra,
        )
    finally:
        asyncio.run(pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def bench_sqlite(rows: int, workdir: Path) -> bool:
    from inbox.db import migrate

    path = workdir / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate(url)
    started = time.perf_counter()
    asyncio.run(fill(url, SQLITE_FILL, rows=rows, customers=max(1, rows // 50)))
    print(f"SQLite: generated {rows:,} messages in {time.perf_counter() - started:.1f} s")
    dump_file, inbox_file = workdir / "sqlite-dump.csv", workdir / "sqlite-inbox.csv"
    if shutil.which("sqlite3"):
        dump = [
            "sqlite3",
            "-readonly",
            str(path),
            "-cmd",
            ".headers on",
            "-cmd",
            ".mode csv",
            "-cmd",
            f".once {dump_file}",
            CEILING_SELECT,
        ]
        timed(dump)  # warm the page cache
        inbox_export(url, inbox_file)  # and the bytecode cache
    else:
        print("  (sqlite3 shell not installed: no ceiling)")
        return True
    ceiling_seconds, runs = interleaved(lambda: timed(dump), lambda: inbox_export(url, inbox_file))
    seconds, _rss, _ = min(runs)
    extra = [("ndjson", inbox_export(url, workdir / "sqlite-inbox.ndjson", "ndjson")[0])]
    return report(
        "SQLite",
        rows,
        seconds,
        "sqlite3 .mode csv",
        ceiling_seconds,
        max(r[1] for r in runs),
        (inbox_file.stat().st_size, dump_file.stat().st_size),
        extra,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="messages in PostgreSQL (default 1,000,000)")
    parser.add_argument(
        "--sqlite-rows", type=int, default=None, help="messages in SQLite (default: the same as --rows; 0 skips SQLite)"
    )
    args = parser.parse_args()
    sqlite_rows = args.rows if args.sqlite_rows is None else args.sqlite_rows
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"inbox export benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="inbox-export-bench-") as workdir:
        if args.rows > 0:
            ok &= bench_postgres(args.rows, Path(workdir))
        if sqlite_rows > 0:
            ok &= bench_sqlite(sqlite_rows, Path(workdir))
    print("\nall targets met" if ok else "\nsome targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
