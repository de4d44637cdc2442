"""`inbox export`: the same bytes as `GET /api/export` for the same filters, to a file or stdout.

    inbox export --format csv|json|ndjson [--since T] [--until T] [--customer E164]
                 [--channel sms|whatsapp] [--direction inbound|outbound] [--staff EMAIL|ID]
                 [--bom] [-o FILE]

With -o the file appears only when the export is complete (a temporary file beside it, renamed
into place; readable by its owner only, as it holds customers' messages), so a failure leaves
nothing half-written. A progress bar goes to stderr when stderr is a terminal; the row count is
printed to stderr at the end. Each run is recorded in the export audit log as `cli:<user>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
import tempfile
from collections.abc import AsyncGenerator, Coroutine
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from inbox.cli_errors import CommandError

if TYPE_CHECKING:  # both imported where used: the CLI starts without them
    from rich.progress import Progress, TaskID

    from inbox.export import ExportInputError, ExportQuery

_T = TypeVar("_T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Choices are checked by inbox.export (one-line errors), not by argparse (usage + error).
    parser.add_argument("--format", default="csv", help="csv (default), json or ndjson")
    parser.add_argument("--since", help="ISO 8601 date or date-time (naive = UTC), inclusive")
    parser.add_argument("--until", help="ISO 8601 date or date-time (naive = UTC); a date includes that whole day")
    parser.add_argument("--customer", help="only this customer (E.164 phone number)")
    parser.add_argument("--channel", help="sms or whatsapp")
    parser.add_argument("--direction", help="inbound or outbound")
    parser.add_argument("--staff", help="only replies sent by this staff member (email or id)")
    parser.add_argument("--bom", action="store_true", help="CSV: start with a UTF-8 byte-order mark, for Excel")
    parser.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")


def _actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry and no LOGNAME/USER (some containers)
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


def _target(output: str | None) -> Path | None:
    if output in (None, "-"):
        return None
    path = Path(output).expanduser()
    if path.is_dir():
        raise CommandError(f"-o {output}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise CommandError(f"-o {output}: the directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise CommandError(f"-o {output}: cannot write in {path.parent}")
    return path


def _check_database(url: str) -> None:
    """SQLite would create an empty file for a mistyped path; say so instead."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database not in (None, "", ":memory:")
        and not Path(parsed.database).expanduser().is_file()
    ):
        raise CommandError(f"there is no database at {parsed.database}: check INBOX_DATABASE_URL")


class _Progress:
    """A rich progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("exporting"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("rows"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.__exit__(exc_type, exc, traceback)

    def total(self, count: int) -> None:  # called only with a bar (see run_export)
        if self.bar is not None:
            self.task = self.bar.add_task("export", total=count)

    def advance(self, count: int) -> None:  # called only with a bar, after total()
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, count)


async def run_export(database_url: str, query: ExportQuery, out: BinaryIO, *, progress: _Progress | None = None) -> int:
    """Writes the export to `out`, audited as `cli:<user>`; returns the row count."""
    from inbox import export
    from inbox.db import Database

    db = Database(database_url)
    rows = 0

    def counted(n: int) -> None:
        nonlocal rows
        rows += n
        if progress is not None and progress.bar is not None:
            progress.advance(n)

    try:
        query = await export.resolve_staff(db, query)
        audit_id = await export.start_audit(db, query, staff_id=None, actor=_actor())
        on_total = progress.total if progress is not None and progress.bar is not None else None
        chunks = export.stream(db, query, audit_id=audit_id, on_total=on_total, on_rows=counted)
        # export.stream is an async generator (it says AsyncIterator): closable.
        closable = cast(AsyncGenerator[bytes, None], chunks)
        async with contextlib.aclosing(closable):  # a failed write still returns the connection first
            async for chunk in chunks:
                out.write(chunk)
        out.flush()
    finally:
        await db.dispose()
    return rows


def _option_error(exc: ExportInputError) -> str:
    """'since must be ...' becomes '--since must be ...': the option as the user typed it."""
    text = str(exc)
    return f"--{text}" if text.startswith(exc.name) else f"--{exc.name}: {text}"


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def cmd_export(args: argparse.Namespace) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from inbox import export
    from inbox.settings import load_settings

    try:
        settings = load_settings()
        query = export.parse_query(
            format=args.format,
            since=args.since,
            until=args.until,
            customer=args.customer,
            channel=args.channel,
            direction=args.direction,
            staff=args.staff,
            bom=args.bom,
            country=settings.default_country,
        )
    except export.ExportInputError as exc:
        raise CommandError(_option_error(exc)) from None
    _check_database(settings.database_url)
    path = _target(args.output)

    temporary: str | None = None
    try:
        # A bar on the terminal that is also receiving the export would only garble it.
        with _Progress(sys.stderr.isatty() and not (path is None and sys.stdout.isatty())) as progress:
            if path is None:
                rows = _run(run_export(settings.database_url, query, sys.stdout.buffer, progress=progress))
            else:
                handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
                with os.fdopen(handle, "wb") as out:
                    rows = _run(run_export(settings.database_url, query, out, progress=progress))
                    os.fsync(out.fileno())
                os.replace(temporary, path)
                temporary = None
    except export.ExportInputError as exc:
        raise CommandError(_option_error(exc)) from None
    except export.ExportFailed as exc:
        raise CommandError(str(exc)) from None
    except SQLAlchemyError as exc:
        message = export.describe_failure(exc).replace("during the export", "before the export began")
        if "no such table" in message or "does not exist" in message:
            message += " (run `inbox migrate` first?)"
        raise CommandError(message) from None
    except BrokenPipeError:
        with contextlib.suppress(OSError):  # stdout is gone; keep Python quiet about it at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise CommandError("the output was closed before the export finished") from None
    except OSError as exc:
        raise CommandError(f"the export failed: {exc}") from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    where = f" to {path}" if path is not None else ""
    print(f"exported {rows} message{'s' if rows != 1 else ''}{where}", file=sys.stderr)
