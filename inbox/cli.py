"""The `inbox` command. Bad input: one line naming the problem on stderr, exit 2, nothing written."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from inbox.cli_errors import CommandError
from inbox.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:  # imported where used: each command loads only what it needs
    from sqlalchemy.ext.asyncio import AsyncSession

    from inbox.reconcile import ReconcileReport

_T = TypeVar("_T")


def _settings(**overrides: object) -> Settings:
    return load_settings(**overrides)


# ---- serve / migrate ----------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> None:
    from inbox.db import migrate

    settings = _settings()
    migrate(settings.database_url)
    print("migrations applied")


def cmd_serve(args: argparse.Namespace) -> None:
    from inbox.db import migrate
    from inbox.serving import run_server

    settings = _settings()
    if not settings.secret_key:
        raise CommandError("INBOX_SECRET_KEY must be set for serve (any long random string)")
    migrate(settings.database_url)
    if not settings.auth_tokens:
        print("warning: TWILIO_AUTH_TOKEN is not set, so every webhook will be refused (403)", file=sys.stderr)
    print(f"inbox serving on http://{args.host}:{args.port} (public URL {settings.public_url})", flush=True)
    run_server(settings, args.host, args.port)


# ---- staff --------------------------------------------------------------------------------


def cmd_staff_add(args: argparse.Namespace) -> None:
    from inbox import accounts
    from inbox.db import Database, migrate

    password = sys.stdin.readline().rstrip("\r\n")
    settings = _settings()
    migrate(settings.database_url)

    async def run() -> accounts.StaffMember:
        db = Database(settings.database_url)
        try:
            async with db.write() as session:
                member = await accounts.add_staff(session, args.email, password, args.role, args.name)
                await session.commit()
                return member
        finally:
            await db.dispose()

    try:
        member = asyncio.run(run())
    except accounts.AccountError as exc:
        raise CommandError(str(exc)) from None
    print(f"added {member.role} {member.email}")


def _staff_command(operation: Callable[[AsyncSession], Awaitable[_T]]) -> _T:
    """Runs `operation(session)` in one committed transaction on the configured database; an
    AccountError becomes the command's one-line error (and nothing is written)."""
    from inbox import accounts
    from inbox.db import Database, migrate

    settings = _settings()
    migrate(settings.database_url)

    async def run() -> _T:
        db = Database(settings.database_url)
        try:
            async with db.write() as session:
                result = await operation(session)
                await session.commit()
                return result
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except accounts.AccountError as exc:
        raise CommandError(str(exc)) from None


def cmd_staff_token(args: argparse.Namespace) -> None:
    from inbox import accounts

    print(_staff_command(lambda session: accounts.issue_token(session, args.email, args.name or "")))


def cmd_staff_list(args: argparse.Namespace) -> None:
    from inbox import accounts

    rows = _staff_command(accounts.list_staff)

    def when(moment: datetime | None) -> str:
        return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"

    table = [("EMAIL", "NAME", "ROLE", "ENABLED", "LAST SIGN-IN", "TOKENS")]
    table += [
        (r.email, r.name, r.role, "yes" if r.enabled else "no", when(r.last_login_at), str(r.tokens)) for r in rows
    ]
    widths = [max(len(row[n]) for row in table) for n in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def cmd_staff_enable(args: argparse.Namespace) -> None:
    from inbox import accounts

    enabled = args.staff_command == "enable"
    member = _staff_command(lambda session: accounts.set_enabled(session, args.email, enabled))
    print(f"{'enabled' if enabled else 'disabled'} {member.email}")


def cmd_staff_password(args: argparse.Namespace) -> None:
    from inbox import accounts

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        new_hash = accounts.hash_password(password)
    except accounts.AccountError as exc:
        raise CommandError(str(exc)) from None
    member = _staff_command(lambda session: accounts.set_password_hash(session, args.email, new_hash))
    print(f"new password set for {member.email}; its sessions are ended")


def cmd_staff_revoke_tokens(args: argparse.Namespace) -> None:
    from inbox import accounts

    count = _staff_command(lambda session: accounts.revoke_tokens(session, args.email))
    print(f"revoked {count} token{'s' if count != 1 else ''} of {args.email.strip().lower()}")


# ---- simulate -----------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> None:
    import httpx

    from inbox.simulate import simulate_inbound

    settings = _settings()
    token = settings.twilio_auth_token
    if not token:
        raise CommandError("TWILIO_AUTH_TOKEN must be set: simulate signs the webhook with it")
    base = (args.url or settings.public_url).rstrip("/")
    try:
        status, sid = simulate_inbound(
            base_url=base,
            public_url=settings.public_url if not args.url else base,
            auth_token=token,
            account_sid=settings.twilio_account_sid,
            from_=args.from_,
            to=args.to or settings.twilio_phone_number or "+15005550006",
            channel=args.channel,
            body=args.body,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except (OSError, httpx.HTTPError) as exc:
        raise CommandError(f"could not reach {base}: {type(exc).__name__}") from None
    if status == 403:
        raise CommandError(
            f"the inbox refused {sid}: the signature did not match. Sign with the running inbox's "
            "TWILIO_AUTH_TOKEN and INBOX_PUBLIC_URL (inbox demo writes them to the demo.env it names)"
        )
    if status != 200:
        raise CommandError(f"the inbox answered {status} for {sid}")
    print(f"delivered {sid} ({status})")


# ---- reconcile ----------------------------------------------------------------------------


def cmd_reconcile(args: argparse.Namespace) -> None:
    from inbox.db import migrate
    from inbox.logs import configure_logging
    from inbox.reconcile import ReconcileError, parse_since, reconcile
    from inbox.runtime import Runtime

    try:
        since = parse_since(args.since)
    except ReconcileError as exc:
        raise CommandError(str(exc)) from None
    settings = _settings()
    if not settings.twilio_configured:
        raise CommandError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set: reconcile reads Twilio's messages")
    configure_logging()
    migrate(settings.database_url)

    async def run() -> ReconcileReport:
        runtime = Runtime.build(settings, run_outbox=False)  # the serving instances send any answers
        await runtime.start()
        try:
            return await reconcile(runtime.db, runtime.bus, settings, runtime.sender, runtime.outbox_waker, since)
        finally:
            await runtime.stop()

    try:
        report = asyncio.run(run())
    except ReconcileError as exc:
        raise CommandError(str(exc)) from None
    except (TimeoutError, OSError) as exc:
        raise CommandError(f"could not reach the database or Redis: {type(exc).__name__}: {exc}") from None
    print(report.line())


# ---- demo ---------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> None:
    from inbox.demo import run_demo

    run_demo(port=args.port, host=args.host)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inbox", description="A two-way SMS and WhatsApp inbox on Twilio.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the app on the configured database, after migrating")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    demo = commands.add_parser("demo", help="the whole product on SQLite with the built-in Twilio sandbox")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(func=cmd_demo)

    migrate = commands.add_parser("migrate", help="apply the schema migrations and exit")
    migrate.set_defaults(func=cmd_migrate)

    staff = commands.add_parser("staff", help="staff accounts").add_subparsers(dest="staff_command", required=True)
    add = staff.add_parser("add", help="create an account; the password is read as one line from stdin")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=["receptionist", "manager"])
    add.add_argument("--name")
    add.set_defaults(func=cmd_staff_add)
    token = staff.add_parser("token", help="print a new API token for the account (shown once)")
    token.add_argument("email")
    token.add_argument("--name", help="what the token is for (shown in `staff list` and on the staff page)")
    token.set_defaults(func=cmd_staff_token)
    staff.add_parser("list", help="every account: email, name, role, enabled, last sign-in").set_defaults(
        func=cmd_staff_list
    )
    for verb, text in (("disable", "end its sessions and refuse its tokens at once"), ("enable", "let it in again")):
        command = staff.add_parser(verb, help=text)
        command.add_argument("email")
        command.set_defaults(func=cmd_staff_enable)
    password = staff.add_parser("password", help="set a new password (one line on stdin); ends its sessions")
    password.add_argument("email")
    password.set_defaults(func=cmd_staff_password)
    revoke = staff.add_parser("revoke-tokens", help="every API token of the account stops working")
    revoke.add_argument("email")
    revoke.set_defaults(func=cmd_staff_revoke_tokens)

    from inbox import export_cli

    export = commands.add_parser("export", help="the conversation history as CSV, JSON or NDJSON")
    export_cli.add_arguments(export)
    export.set_defaults(func=export_cli.cmd_export)

    simulate = commands.add_parser("simulate", help="post a signed inbound webhook to a running inbox")
    simulate.add_argument("--from", dest="from_", required=True, help="the customer's E.164 number")
    simulate.add_argument("--to", help="the business number (default TWILIO_PHONE_NUMBER)")
    simulate.add_argument("--channel", choices=["sms", "whatsapp"], default="sms")
    simulate.add_argument("--url", help="the inbox's base URL (default INBOX_PUBLIC_URL)")
    simulate.add_argument("body")
    simulate.set_defaults(func=cmd_simulate)

    reconcile = commands.add_parser("reconcile", help="ingest inbound messages Twilio has and the inbox never got")
    reconcile.add_argument(
        "--since", help="ISO 8601 date or date-time (naive = UTC), or a span such as 12h or 3d (default: 7 days)"
    )
    reconcile.set_defaults(func=cmd_reconcile)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (SettingsError, CommandError) as exc:
        print(f"inbox: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
