"""docker/ cannot be run on this machine, so it is kept honest by reading it: compose.yaml,
the Dockerfile, the Caddyfile and the example env file must agree with each other and with the
app (every setting it needs, the ports, the health checks, the files the image copies)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from inbox.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
APPS = {name: s for name, s in SERVICES.items() if (s.get("command") or [None])[0] == "serve"}
REQUIRED = (
    "INBOX_DATABASE_URL",
    "INBOX_REDIS_URL",
    "INBOX_PUBLIC_URL",
    "INBOX_SECRET_KEY",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
)
# What an operator writes into docker/.env, shaped as the settings want it.
FILLED = {
    "INBOX_DOMAIN": "inbox.example.com",
    "POSTGRES_PASSWORD": "0123456789abcdef0123456789abcdef",
    "INBOX_SECRET_KEY": "a-long-random-string-for-the-test",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "2" * 32,
    "TWILIO_MESSAGING_SERVICE_SID": "MG" + "4" * 32,
}


def env_file(path: Path) -> tuple[dict[str, str], set[str]]:
    """(KEY=value lines, every key mentioned, commented out or not) of a dotenv file."""
    values, mentioned = {}, set()
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if match := re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line):
            mentioned.add(match.group(1))
            if not line.startswith("#"):
                values[match.group(1)] = match.group(2)
    return values, mentioned


EXAMPLE, EXAMPLE_KEYS = env_file(DOCKER / "inbox.env.example")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}; a missing required one fails the test."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        found = variables.get(name, "")
        if op == ":?" and not found:
            raise AssertionError(f"compose needs {name}: {arg}")
        return found or (arg if op == ":-" else "")

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:[?-])([^}]*))?\}", one, str(value))


def compose_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)", (DOCKER / "compose.yaml").read_text()))


def effective_env(service: dict) -> dict[str, str]:
    """What the container's environment is, with docker/.env filled in as an operator would."""
    dotenv = {**EXAMPLE, **FILLED}
    assert service.get("env_file") == ".env", "the apps read docker/.env, the file compose interpolates from"
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {**dotenv, **{k: interpolate(v, dotenv) for k, v in environment.items()}}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def served_port(command: list[str]) -> int:
    return int(command[command.index("--port") + 1]) if "--port" in command else 8000


def test_compose_has_two_apps_a_migration_postgres_redis_and_a_proxy() -> None:
    assert len(APPS) >= 2
    assert {"postgres", "redis", "migrate", "caddy"} <= set(SERVICES)
    for name, app in APPS.items():
        command = app["command"]
        assert command[command.index("--host") + 1] == "0.0.0.0", name
        build = app["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == (DOCKER / "Dockerfile").resolve()
        assert app["image"] == SERVICES["migrate"]["image"]  # the migration is the same code
        assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert app["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ports" not in app, f"{name} is reached through the proxy only"
        grace = int(str(app["stop_grace_period"]).removesuffix("s"))
        assert grace >= 30, "SIGKILL must not cut in-flight requests (10 s) and sends (20 s) short"
    migrate = SERVICES["migrate"]
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_every_setting_the_app_needs_is_set_and_valid() -> None:
    aliases = {field.alias for field in Settings.model_fields.values()}
    for name, app in APPS.items():
        env = effective_env(app)
        for variable in REQUIRED:
            assert env.get(variable), f"{name}: {variable} is not set"
        settings = load_settings(_env_file=None, **{k: v for k, v in env.items() if k in aliases})
        assert settings.database_url.startswith("postgresql+asyncpg://")
        assert settings.public_url == "https://" + FILLED["INBOX_DOMAIN"]
        assert settings.twilio_configured
        # The URLs name the compose services and PostgreSQL's own user and database.
        db = re.match(r"postgresql\+asyncpg://([^:]+):([^@]+)@([^:/]+):(\d+)/(\w+)$", settings.database_url)
        assert db, settings.database_url
        postgres_env = {
            k: interpolate(v, {**EXAMPLE, **FILLED}) for k, v in SERVICES["postgres"]["environment"].items()
        }
        assert db.groups() == (
            postgres_env["POSTGRES_USER"],
            postgres_env["POSTGRES_PASSWORD"],
            "postgres",
            "5432",
            postgres_env["POSTGRES_DB"],
        )
        assert re.match(r"redis://redis:6379/\d+$", settings.redis_url)
    # Every setting is at least mentioned where the operator looks, and nothing there is a typo.
    in_compose = set(next(iter(APPS.values()))["environment"])
    assert aliases - {"TWILIO_API_BASE_URL"} <= EXAMPLE_KEYS | in_compose, aliases - EXAMPLE_KEYS - in_compose
    assert aliases | compose_variables() >= EXAMPLE_KEYS, EXAMPLE_KEYS - aliases - compose_variables()
    assert compose_variables() <= set(EXAMPLE), "every ${VAR} in compose.yaml comes from docker/.env"


def test_the_example_leaves_secrets_empty_rather_than_guessable() -> None:
    for variable in ("INBOX_SECRET_KEY", "POSTGRES_PASSWORD", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY_SECRET"):
        assert EXAMPLE.get(variable, "") == "", variable
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        interpolate(next(iter(APPS.values()))["environment"]["INBOX_DATABASE_URL"], EXAMPLE)


def test_the_proxy_terminates_tls_and_balances_both_apps_with_websockets() -> None:
    caddy = SERVICES["caddy"]
    assert caddy["image"].startswith("caddy:")
    published = {str(port).split(":")[-1].split("/")[0] for port in caddy["ports"]}
    assert {"80", "443"} <= published
    mounts = [volume.split(":") for volume in caddy["volumes"] if volume.startswith("./")]
    assert ["./Caddyfile", "/etc/caddy/Caddyfile", "ro"] in mounts
    for source, *_ in mounts:
        assert (DOCKER / source).exists(), source
    for name in APPS:
        assert caddy["depends_on"][name]["condition"] == "service_healthy"
    assert "INBOX_DOMAIN" in caddy["environment"]
    caddyfile = (DOCKER / "Caddyfile").read_text()
    assert re.search(r"^\{\$INBOX_DOMAIN\} \{", caddyfile, re.M), "a site block for the domain: automatic HTTPS"
    upstreams = re.search(r"reverse_proxy ([^{\n]+)\{", caddyfile).group(1).split()
    assert sorted(upstreams) == sorted(f"{name}:{served_port(app['command'])}" for name, app in APPS.items())
    assert "health_uri /healthz" in caddyfile
    assert "respond /metrics 404" in caddyfile  # metrics stay on the internal network
    # Caddy passes websocket upgrades by itself; nothing in the file may strip the headers it needs.
    assert "Upgrade" not in caddyfile and "Connection" not in caddyfile


def test_the_dockerfile_builds_from_the_lock_and_runs_unprivileged_with_a_health_check() -> None:
    instructions = dockerfile()
    args = dict(a.split("=", 1) for kind, a in instructions if kind == "ARG" and "=" in a)
    froms = [interpolate(a.split()[0], args) for kind, a in instructions if kind == "FROM"]
    assert len(froms) >= 2 and froms[-1].startswith("python:3.11-slim"), froms
    runs = " ".join(a for kind, a in instructions if kind == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    user = [a for kind, a in instructions if kind == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    expose = int(next(a for kind, a in instructions if kind == "EXPOSE"))
    health = next(a for kind, a in instructions if kind == "HEALTHCHECK")
    assert f"127.0.0.1:{expose}/healthz" in health
    entrypoint = json.loads([a for kind, a in instructions if kind == "ENTRYPOINT"][-1])
    cmd = json.loads([a for kind, a in instructions if kind == "CMD"][-1])
    assert entrypoint == ["inbox"] and cmd[0] == "serve" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert served_port(cmd) == expose
    for name, app in APPS.items():  # the image's health check probes the port compose serves on
        assert served_port(app["command"]) == expose, name


def test_every_file_the_dockerfile_copies_exists() -> None:
    context = (DOCKER / next(iter(APPS.values()))["build"]["context"]).resolve()
    copied = []
    for kind, arguments in dockerfile():
        if kind != "COPY" or "--from=" in arguments:
            continue
        parts = [p for p in shlex.split(arguments) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (context / source).exists(), source
            copied.append(source)
    # The wheel is built from these: the package, its pages and assets, and pyproject's readme.
    assert {"pyproject.toml", "uv.lock", "README.md", "inbox", "templates", "static"} <= set(copied)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"templates" = "inbox/_templates"' in pyproject and '"static" = "inbox/_static"' in pyproject
