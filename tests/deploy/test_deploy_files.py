"""The deployment files in deploy/: what an operator relies on when copying them.

Every file is parsed and checked for the properties that matter in production: the public
surface (only /udesk/*, /telegram/webhook, /media/*), no secrets, non-root, probes, the
migration step, timeouts and body limits, and that the templates agree with each other and
with the bridge's settings. Where the real tool is installed (systemd-analyze, nginx, caddy,
kubectl, check-jsonschema, kubernetes-validate) it checks the file too; the parsing checks
run everywhere.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

PUBLIC_PATHS = {"/udesk/", "/telegram/webhook", "/media/"}
MEDIA_DIR = "/var/lib/udesk-bridge/media"
APP_UID = 10001
SECRET_KEYS = {
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "UDESK_API_TOKEN",
    "UDESK_PUSH_SECRET",
    "ADMIN_TOKEN",
}
PLACEHOLDER = "CHANGE_ME"
BOT_TOKEN_RE = re.compile(r"\d{8,10}:[A-Za-z0-9_-]{35}")


# --- helpers -----------------------------------------------------------------------------


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object in deploy/k8s by (kind, name)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_all(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{key} defined twice"
            objects[key] = doc
    return objects


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and key == key.strip() and key.isupper(), f"{path.name}: bad line {line!r}"
        values[key] = value
    return values


def setting_names() -> set[str]:
    from bridge.settings import Settings

    return {name.upper() for name in Settings.model_fields}


def parse_seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(ms|s|m|min)?", value.strip())
    assert match, f"not a duration: {value!r}"
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "min": 60}[unit]


def blocks(text: str, head: str) -> dict[str, str]:
    """``head`` is a regex for what precedes ``{`` (one capture group: the block's name);
    returns name → the text between the braces (nested braces included)."""
    found: dict[str, str] = {}
    for match in re.finditer(head + r"\s*\{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        found[match.group(1)] = text[match.end() : i - 1]
    return found


def strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] if "#" in line else line for line in text.splitlines())


class _Upstream(BaseHTTPRequestHandler):
    """Stands in for the bridge: /healthz 200, /unhealthy 503, anything else echoes."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status = 503 if self.path == "/unhealthy" else 200
        body = f"UPSTREAM {self.command} {self.path}".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def fetch(
    method: str, url: str, body: bytes | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, str]:
    """Status and body; ``url`` is sent as given (no path normalisation by the client)."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"proxy exited: {proc.communicate()[1].decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def declared_body_status(base: str, length: int, context: ssl.SSLContext | None) -> int:
    """The answer to a push announcing ``length`` bytes, before any byte of it is sent (a
    proxy that refuses mid-upload resets the connection, which makes a flaky test)."""
    parts = urllib.parse.urlsplit(base)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.netloc, timeout=5, context=context)
    else:
        conn = http.client.HTTPConnection(parts.netloc, timeout=5)
    try:
        conn.putrequest("POST", "/udesk/push/some-secret")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def check_proxy_surface(base: str, context: ssl.SSLContext | None = None) -> None:
    """What must hold for any of our reverse proxies in front of the bridge."""
    for method, path in [
        ("POST", "/udesk/push/some-secret"),
        ("POST", "/udesk/customer-token/some-secret"),
        ("POST", "/udesk/field-push/some-secret"),
        ("POST", "/telegram/webhook"),
        ("GET", "/media/some-token"),
    ]:
        status, body = fetch(method, base + path, b"{}" if method == "POST" else None, context)
        assert (status, body) == (200, f"UPSTREAM {method} {path}"), (method, path)
    for path in [
        "/admin/routing/reload",
        "/admin",
        "/metrics",
        "/readyz",
        "/",
        "/udesk/../admin/routing/reload",
        "/media/%2e%2e/metrics",
        "/telegram/webhook/../../metrics",
    ]:
        status, body = fetch("POST" if "admin" in path else "GET", base + path, None, context)
        assert status in {403, 404}, (path, status)
        assert "UPSTREAM" not in body, f"{path} reached the bridge"
    assert fetch("POST", base + "/udesk/push/s", b"x" * (1024 * 1024), context)[0] == 200
    assert declared_body_status(base, 1024 * 1024 + 1, context) == 413
    assert fetch("POST", base + "/media/some-token", b"{}", context)[0] in {403, 405}


# --- secrets ----------------------------------------------------------------------------


OPERATOR_COPIES = {"bridge.env", ".env"}  # filled-in copies an operator keeps locally


def deploy_text_files() -> list[Path]:
    """The files we ship (not an operator's filled-in bridge.env or .env beside them)."""
    return [
        p
        for p in sorted(DEPLOY.rglob("*"))
        if p.is_file() and p.suffix != ".pyc" and p.name not in OPERATOR_COPIES
    ]


def test_no_real_looking_secrets_in_deploy_files() -> None:
    for path in deploy_text_files():
        text = path.read_text(encoding="utf-8")
        assert not BOT_TOKEN_RE.search(text), f"{path}: looks like a Telegram bot token"
        assert "PRIVATE KEY-----" not in text, f"{path}: contains a private key"


@pytest.mark.parametrize("name", ["bridge.env.example", "compose.env.example"])
def test_env_templates_hold_placeholders_for_every_secret(name: str) -> None:
    values = read_env_file(DEPLOY / name)
    for key, value in values.items():
        if key in SECRET_KEYS or "PASSWORD" in key:
            assert value.startswith(PLACEHOLDER), f"{name}: {key} is not a placeholder"
    if "DATABASE_URL" in values:
        password = re.search(r"://[^:/@]+:([^@]*)@", values["DATABASE_URL"])
        assert password and password.group(1).startswith(PLACEHOLDER)


def test_k8s_secret_is_a_template_with_placeholders() -> None:
    secret = k8s_objects()[("Secret", "udesk-bridge-secrets")]
    data = secret["stringData"]
    assert "data" not in secret, "base64 data hides what is in the template"
    assert SECRET_KEYS | {"DATABASE_URL"} <= set(data)
    for key, value in data.items():
        assert PLACEHOLDER in value, f"Secret {key} is not a placeholder"
    # The real Secret is created by hand: kustomize must not apply the template.
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kustomization["resources"]


# --- the templates agree with the bridge's settings ----------------------------------------


def test_env_template_names_only_real_settings() -> None:
    known = setting_names()
    unknown = set(read_env_file(DEPLOY / "bridge.env.example")) - known
    assert not unknown, f"bridge.env.example: no such setting {sorted(unknown)}"
    objects = k8s_objects()
    for kind, name in [("ConfigMap", "udesk-bridge-config"), ("Secret", "udesk-bridge-secrets")]:
        doc = objects[(kind, name)]
        keys = set(doc.get("data") or doc.get("stringData"))
        assert not keys - known, f"{name}: no such setting {sorted(keys - known)}"


CHECK_CONFIG = "import sys; from bridge.cli import main; sys.exit(main())"


def run_check_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    return subprocess.run(
        [sys.executable, "-c", CHECK_CONFIG, "check-config"],
        env=clean | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def fill_in(values: dict[str, str]) -> dict[str, str]:
    """What an operator does with a template: every CHANGE_ME… becomes a strong random value."""
    return {
        key: re.sub(rf"{PLACEHOLDER}\w*", lambda _: secrets.token_hex(24), value)
        for key, value in values.items()
    }


def assert_refused_for_placeholders(values: dict[str, str], result: Any) -> None:
    """Exit 1 and exactly one line per setting still holding a placeholder, nothing else."""
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    unfinished = sorted(key for key, value in values.items() if PLACEHOLDER in value)
    problems = sorted(line.split(":")[0].strip() for line in result.stderr.splitlines()[1:])
    assert problems == unfinished, result.stderr


def test_env_template_is_refused_until_filled_in() -> None:
    """The template as shipped must not start anything; filling in the placeholders is all an
    operator has to do (nothing required is missing)."""
    template = read_env_file(DEPLOY / "bridge.env.example")
    assert_refused_for_placeholders(template, run_check_config(template))
    result = run_check_config(fill_in(template))
    assert result.returncode == 0, result.stderr
    assert "telegram mode: webhook" in result.stdout


def test_compose_database_url_is_refused_with_the_example_password() -> None:
    """deploy/compose.yaml builds DATABASE_URL from POSTGRES_PASSWORD of compose.env.example."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    url = compose["services"]["bridge"]["environment"]["DATABASE_URL"]
    password = read_env_file(DEPLOY / "compose.env.example")["POSTGRES_PASSWORD"]
    url = re.sub(r"\$\{POSTGRES_PASSWORD[^}]*\}", password, url)
    env = fill_in(read_env_file(DEPLOY / "bridge.env.example")) | {"DATABASE_URL": url}
    result = run_check_config(env)
    assert_refused_for_placeholders({"DATABASE_URL": url}, result)
    assert password not in result.stderr


def k8s_config_and_secret(tmp_path: Path) -> dict[str, str]:
    objects = k8s_objects()
    config = dict(objects[("ConfigMap", "udesk-bridge-config")]["data"])
    routing = objects[("ConfigMap", "udesk-bridge-routing")]["data"]
    routing_file = Path(config["ROUTING_FILE"])
    assert routing_file.name in routing, "ROUTING_FILE names a key of the routing ConfigMap"
    (tmp_path / routing_file.name).write_text(routing[routing_file.name])
    config["ROUTING_FILE"] = str(tmp_path / routing_file.name)
    assert config["TELEGRAM_MODE"] == "webhook", "replicas > 1 need webhook mode"
    assert config["PUBLIC_URL"].startswith("https://")
    return config | objects[("Secret", "udesk-bridge-secrets")]["stringData"]


def test_k8s_config_and_secret_are_refused_until_filled_in(tmp_path: Path) -> None:
    env = k8s_config_and_secret(tmp_path)
    assert_refused_for_placeholders(env, run_check_config(env))
    result = run_check_config(fill_in(env))
    assert result.returncode == 0, result.stderr


def test_media_dir_is_the_same_everywhere() -> None:
    """MEDIA_DIR, the volume mounts and the systemd sandbox must name one directory."""
    assert read_env_file(DEPLOY / "bridge.env.example")["MEDIA_DIR"] == MEDIA_DIR
    assert f"MEDIA_DIR={MEDIA_DIR}" in (DEPLOY / "Dockerfile").read_text()
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert f"media:{MEDIA_DIR}" in compose["services"]["bridge"]["volumes"]
    objects = k8s_objects()
    assert objects[("ConfigMap", "udesk-bridge-config")]["data"]["MEDIA_DIR"] == MEDIA_DIR
    container = objects[("Deployment", "udesk-bridge")]["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container[0]["volumeMounts"]}
    assert mounts["media"] == MEDIA_DIR
    unit = read_unit()
    assert MEDIA_DIR in unit["Service"]["ReadWritePaths"][0].split()


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", strip_comments_docker(text))
    out = []
    for line in text.splitlines():
        if line.strip():
            op, _, rest = line.strip().partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def strip_comments_docker(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for op, rest in instructions if op == "FROM"]
    assert len(froms) >= 2, "builder + runtime stages"
    args = dict(rest.split("=", 1) for op, rest in instructions if op == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert froms[-1].startswith("${PYTHON_IMAGE}")
    copies = [rest for op, rest in final_stage() if op == "COPY"]
    assert any(c.startswith("--from=builder") for c in copies), "runtime copies the build"
    assert not any(op == "RUN" and "pip install" in rest for op, rest in final_stage())


def test_dockerfile_runs_as_non_root() -> None:
    users = [rest for op, rest in final_stage() if op == "USER"]
    assert users, "the runtime stage sets USER"
    args = dict(rest.split("=", 1) for op, rest in final_stage() if op == "ARG" and "=" in rest)
    user = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], users[-1]).split(":")[0]
    assert user not in {"root", "0"}
    assert int(user) == APP_UID, "numeric, so Kubernetes runAsNonRoot can verify it"


def test_dockerfile_entrypoint_signal_port_and_migrations() -> None:
    stage = dict(final_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["udesk-bridge"]
    assert json.loads(stage["CMD"]) == ["run"]
    assert stage["STOPSIGNAL"] == "SIGTERM"
    assert stage["EXPOSE"].split() == ["8080"]
    assert "BRIDGE_MIGRATIONS_DIR=/app/migrations" in stage["ENV"]
    assert ("COPY", "migrations /app/migrations") in final_stage()


def test_dockerfile_copies_what_the_package_build_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    readme = pyproject["project"]["readme"]
    copied = " ".join(rest for op, rest in dockerfile_instructions() if op == "COPY")
    assert "pyproject.toml" in copied and readme in copied and "bridge" in copied
    # The build context (deploy/Dockerfile.dockerignore) lets exactly those in.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split("\n")
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    assert patterns[0] == "*", "deny by default: no .venv, .env, media or databases"
    assert {"!pyproject.toml", f"!{readme}", "!bridge", "!migrations"} <= set(patterns)


def healthcheck_code_from_dockerfile() -> str:
    healthcheck = dict(final_stage())["HEALTHCHECK"]
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[1] == "-c" and "curl" not in healthcheck
    return str(command[2])


def healthcheck_code_from_compose() -> str:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    test = compose["services"]["bridge"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[2] == "-c"
    return str(test[3])


@pytest.mark.parametrize("source", ["Dockerfile", "compose.yaml"])
def test_healthcheck_command_tells_healthy_from_unhealthy(source: str) -> None:
    """Run the container healthcheck's python against a stand-in for the bridge."""
    code = (
        healthcheck_code_from_dockerfile()
        if source == "Dockerfile"
        else healthcheck_code_from_compose()
    )
    assert "/healthz" in code
    with upstream() as port:
        env = {"BRIDGE_PORT": str(port), "PATH": os.environ.get("PATH", "")}
        ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
        assert ok.returncode == 0, ok.stderr
        sick = code.replace("/healthz", "/unhealthy")
        bad = subprocess.run([sys.executable, "-c", sick], env=env, capture_output=True)
        assert bad.returncode != 0
    down = subprocess.run(
        [sys.executable, "-c", code],
        env={"BRIDGE_PORT": str(free_port())},
        capture_output=True,
    )
    assert down.returncode != 0


# --- Docker Compose ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def test_compose_start_order_migrates_once_before_the_bridge(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "bridge", "worker", "caddy"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    bridge = services["bridge"]
    assert bridge["command"] == ["run", "--no-migrate"]
    assert bridge["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert bridge["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["image"] == bridge["image"], "migrate with the same release"


def test_compose_postgres_is_persistent_and_health_checked(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    named = {v.split(":")[0] for v in postgres["volumes"]}
    assert named & set(compose["volumes"]), "data on a named volume"
    assert "ports" not in postgres, "the database is not published"


def test_compose_bridge_settings_volume_and_shutdown(compose: dict[str, Any]) -> None:
    bridge = compose["services"]["bridge"]
    assert "bridge.env" in bridge["env_file"]
    assert "@postgres:5432/" in bridge["environment"]["DATABASE_URL"]
    assert "${POSTGRES_PASSWORD" in bridge["environment"]["DATABASE_URL"], "no literal password"
    assert "media" in compose["volumes"]
    assert bridge["read_only"] is True and bridge["cap_drop"] == ["ALL"]
    # The bridge needs ~20 s to drain; Docker's default of 10 s would SIGKILL it.
    assert parse_seconds(bridge["stop_grace_period"]) >= 25
    assert bridge["stop_signal"] == "SIGTERM"


def test_compose_split_layout_is_opt_in_with_workers_yielding_the_cpu(
    compose: dict[str, Any],
) -> None:
    """`--profile split` adds a worker beside the bridge: same release, database and media,
    after the migration, delivering at a lower CPU weight; without the profile, one process
    does everything."""
    services = compose["services"]
    bridge, worker = services["bridge"], services["worker"]
    assert worker["profiles"] == ["split"]
    assert "profiles" not in bridge, "the bridge always runs"
    assert bridge["environment"]["BRIDGE_ROLE"] == "${BRIDGE_ROLE:-all}"
    assert read_env_file(DEPLOY / "compose.env.example")["BRIDGE_ROLE"] == "all"
    assert worker["environment"]["BRIDGE_ROLE"] == "worker"
    assert worker["environment"]["DATABASE_URL"] == bridge["environment"]["DATABASE_URL"]
    assert worker["image"] == bridge["image"] and worker["command"] == bridge["command"]
    assert worker["volumes"] == bridge["volumes"][:1], "the same media volume"
    assert worker["depends_on"] == bridge["depends_on"]
    assert worker["cpu_shares"] < bridge.get("cpu_shares", 1024)
    assert worker["healthcheck"] == bridge["healthcheck"]
    assert parse_seconds(worker["stop_grace_period"]) >= 25


def test_compose_only_the_proxy_is_published(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name != "caddy":
            assert "ports" not in service, f"{name} must not be published"
    caddy = compose["services"]["caddy"]
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    assert "./caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert any(v.endswith(":/data") for v in caddy["volumes"]), "certificates persist"


def test_compose_variables_are_documented(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{(\w+)", (DEPLOY / "compose.yaml").read_text()))
    documented = set(read_env_file(DEPLOY / "compose.env.example"))
    assert used <= documented, f"compose.env.example lacks {sorted(used - documented)}"


def test_compose_matches_the_compose_spec() -> None:
    if not shutil.which("check-jsonschema") and not _importable("check_jsonschema"):
        pytest.skip("check-jsonschema not installed (pip install check-jsonschema)")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "check_jsonschema"),
            *("--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --- Caddy --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def caddyfile() -> str:
    return strip_comments((DEPLOY / "caddy" / "Caddyfile").read_text())


def test_caddy_exposes_only_the_public_paths(caddyfile: str) -> None:
    handles = blocks(caddyfile, r"\bhandle(?:[ \t]+([^\s{]+))?")
    proxied = {path for path, body in handles.items() if "import to_bridge" in body}
    assert proxied == {"/udesk/*", "/telegram/webhook", "/media/*"}
    for path in ("/admin*", "/metrics*", None):
        assert handles[path].split() == ["respond", "404"], f"handle {path}"


def test_caddy_limits_bodies_and_times_out(caddyfile: str) -> None:
    handles = blocks(caddyfile, r"\bhandle(?:[ \t]+([^\s{]+))?")
    for path in ("/udesk/*", "/telegram/webhook"):
        assert "import body_limit_1mib" in handles[path]
    snippets = blocks(caddyfile, r"(?m)^\(([\w-]+)\)")
    assert "max_size 1MiB" in snippets["body_limit_1mib"]
    assert "1048576" in snippets["body_limit_1mib"]
    assert "response_header_timeout 10s" in snippets["to_bridge"]
    assert "dial_timeout" in snippets["to_bridge"]
    assert re.search(r"timeouts\s*\{[^}]*read_body[^}]*\}", caddyfile)
    assert "{$BRIDGE_DOMAIN}" in caddyfile, "a real domain, so Caddy gets a certificate"


def caddy_env(tmp_path: Path, site: str, upstream_addr: str) -> dict[str, str]:
    return os.environ | {
        "BRIDGE_DOMAIN": site,
        "ACME_EMAIL": "ops@example.com",
        "BRIDGE_UPSTREAM": upstream_addr,
        "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }


@pytest.mark.skipif(not shutil.which("caddy"), reason="caddy not installed; text checks only")
def test_caddy_blocks_admin_and_metrics_for_real(tmp_path: Path) -> None:
    caddyfile = str(DEPLOY / "caddy" / "Caddyfile")
    port = free_port()
    with upstream() as up:
        env = caddy_env(tmp_path, f"http://127.0.0.1:{port}", f"127.0.0.1:{up}")
        check = subprocess.run(
            ["caddy", "validate", "--config", caddyfile, "--adapter", "caddyfile"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, check.stderr[-2000:]
        proc = subprocess.Popen(
            ["caddy", "run", "--config", caddyfile, "--adapter", "caddyfile"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(port, proc)
            check_proxy_surface(f"http://127.0.0.1:{port}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# --- nginx --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_conf() -> str:
    return strip_comments((DEPLOY / "nginx" / "udesk-bridge.conf").read_text())


def nginx_locations(conf: str) -> dict[str, str]:
    https = [body for body in server_blocks(conf) if "ssl_certificate" in body]
    assert len(https) == 1
    return blocks(https[0], r"\blocation\s+(?:[=^~]+\s+)?(\S+)")


def server_blocks(conf: str) -> list[str]:
    found = []
    for match in re.finditer(r"\bserver\s*\{", conf):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(conf[i], 0)
            i += 1
        found.append(conf[match.end() : i - 1])
    return found


def test_nginx_denies_admin_and_metrics(nginx_conf: str) -> None:
    locations = nginx_locations(nginx_conf)
    for path in ("/admin", "/metrics"):
        assert "deny all;" in locations[path], path
        assert "proxy_pass" not in locations[path]
    assert re.search(r"location\s+\^~\s+/admin\s*\{", nginx_conf), "^~ wins over regexes"
    assert locations["/"].split() == ["return", "404;"]


def test_nginx_proxies_only_the_public_paths(nginx_conf: str) -> None:
    locations = nginx_locations(nginx_conf)
    proxied = {path for path, body in locations.items() if "proxy_pass" in body}
    assert proxied - {"/healthz"} == PUBLIC_PATHS
    for path in ("/udesk/", "/telegram/webhook"):
        body = locations[path]
        assert "client_max_body_size 1m;" in body
        assert "proxy_read_timeout 10s;" in body
        assert re.search(r"limit_except POST\s*\{\s*deny all;", body)
    assert re.search(r"limit_except GET\s*\{\s*deny all;", locations["/media/"])


def test_nginx_tls_redirect_headers_and_upstream(nginx_conf: str) -> None:
    plain = [body for body in server_blocks(nginx_conf) if "ssl_certificate" not in body]
    assert len(plain) == 1 and "return 301 https://$host$request_uri;" in plain[0]
    https = next(body for body in server_blocks(nginx_conf) if "ssl_certificate" in body)
    assert re.search(r"listen 443 ssl", https)
    for header in ("X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme"):
        assert f"proxy_set_header {header};" in https
    assert 'proxy_set_header Connection "";' in https and "proxy_http_version 1.1;" in https
    upstream_block = blocks(nginx_conf, r"\bupstream\s+(\w+)")["udesk_bridge"]
    assert "least_conn;" in upstream_block and re.search(r"keepalive \d+;", upstream_block)
    assert len(re.findall(r"^\s*server\s", upstream_block, re.M)) >= 2


def test_nginx_access_log_hides_the_push_secret(nginx_conf: str) -> None:
    log_format = re.search(r"log_format udesk_bridge(.*?);", nginx_conf, re.S)
    assert log_format and "$request " not in log_format.group(1)
    assert "$request_uri" not in log_format.group(1)
    assert "$udesk_bridge_log_uri" in log_format.group(1)
    for body in server_blocks(nginx_conf):
        assert "access_log /var/log/nginx/udesk-bridge.access.log udesk_bridge;" in body


def nginx_test_config(tmp_path: Path, upstream_port: int, https_port: int) -> Path:
    """The site with its placeholders replaced, inside a minimal main config."""
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=bridge.example.com"),
            *("-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")),
        ],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx" / "udesk-bridge.conf").read_text()
    site = site.replace("/etc/ssl/udesk-bridge/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/ssl/udesk-bridge/privkey.pem", str(tmp_path / "key.pem"))
    site = site.replace("/var/log/nginx/", f"{tmp_path}/")
    site = re.sub(r"listen \[::\]:\d+[^;]*;", "", site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    site = site.replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
    site = re.sub(r"server 192\.0\.2\.\d+:8080", f"server 127.0.0.1:{upstream_port}", site)
    (tmp_path / "site.conf").write_text(site)
    temp = " ".join(
        f"{kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp_path / "nginx.conf"
    # Workers run as `nobody` under a root master and could not write request bodies into
    # pytest's private tmp_path.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main.write_text(
        f"{user}pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n{temp}\ninclude {tmp_path}/site.conf;\n}}\n"
    )
    return main


needs_nginx = pytest.mark.skipif(
    not (shutil.which("nginx") and shutil.which("openssl")),
    reason="nginx or openssl not installed; the parsing checks above still ran",
)


@needs_nginx
def test_nginx_accepts_the_site_and_blocks_admin_for_real(tmp_path: Path) -> None:
    https_port = free_port()
    with upstream() as up:
        main = nginx_test_config(tmp_path, up, https_port)
        nginx = ["nginx", "-e", str(tmp_path / "error.log"), "-p", str(tmp_path), "-c", str(main)]
        check = subprocess.run([*nginx, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([*nginx, "-g", "daemon off;"], stderr=subprocess.PIPE)
        try:
            wait_for_port(https_port, proc)
            context = ssl.create_default_context()
            context.check_hostname = False  # a throw-away self-signed certificate
            context.verify_mode = ssl.CERT_NONE
            check_proxy_surface(f"https://127.0.0.1:{https_port}", context)
            log = (tmp_path / "udesk-bridge.access.log").read_text()
            assert "some-secret" not in log and "/udesk/push/-" in log
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# --- systemd ------------------------------------------------------------------------------


def read_unit() -> dict[str, dict[str, list[str]]]:
    """section → key → values (repeated keys such as SystemCallFilter keep every value)."""
    unit: dict[str, dict[str, list[str]]] = {}
    section = None
    path = DEPLOY / "systemd" / "udesk-bridge.service"
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            unit.setdefault(section, {})
            continue
        assert section and "=" in line, f"stray line {line!r}"
        key, value = line.split("=", 1)
        unit[section].setdefault(key, []).append(value)
    return unit


def test_systemd_unit_runs_the_daemon_as_its_own_user() -> None:
    service = read_unit()["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["Type"] == "exec"
    assert one["User"] == "udesk-bridge"
    assert one["EnvironmentFile"] == "/etc/udesk-bridge/bridge.env"
    assert one["ExecStart"] == "/opt/udesk-bridge/.venv/bin/udesk-bridge run"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID", "SIGHUP reloads routing"
    assert one["Restart"] == "on-failure"
    assert one["KillSignal"] == "SIGTERM"
    assert parse_seconds(one["TimeoutStopSec"]) >= 25, "the bridge drains for ~20 s"
    assert one["Environment"] == "BRIDGE_MIGRATIONS_DIR=/opt/udesk-bridge/migrations"
    assert read_unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_unit_is_sandboxed() -> None:
    service = read_unit()["Service"]
    one = {key: values[-1] for key, values in service.items()}
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictSUIDSGID",
        "LockPersonality",
        "MemoryDenyWriteExecute",
    ):
        assert one.get(key) == "yes", key
    assert one["ProtectSystem"] == "strict"
    assert one["CapabilityBoundingSet"] == "", "no capabilities at all"
    assert one["RestrictAddressFamilies"].split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert service["SystemCallFilter"][0] == "@system-service"
    assert one["SystemCallArchitectures"] == "native"


def verify_copy(tmp_path: Path) -> Path:
    """systemd-analyze verify fails when ExecStart's binary is missing, and the venv exists
    only on a real install; so verify a copy whose ExecStart is /bin/true (the rest of the
    unit, every directive and the sandbox, is what gets checked)."""
    text = (DEPLOY / "systemd" / "udesk-bridge.service").read_text()
    copy = tmp_path / "udesk-bridge.service"
    copy.write_text(re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", text))
    return copy


needs_systemd_analyze = pytest.mark.skipif(
    not shutil.which("systemd-analyze"),
    reason="systemd-analyze not installed; the unit was checked by parsing above",
)


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    copy = verify_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", copy.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Unknown keys or bad values are only warnings for verify: none may mention our unit.
    assert "udesk-bridge.service" not in output, output


@needs_systemd_analyze
def test_systemd_sandbox_exposure_stays_low(tmp_path: Path) -> None:
    copy = verify_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", copy.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    if result.returncode != 0 and not match:
        pytest.skip(f"this systemd-analyze has no offline security check: {result.stderr}")
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


# --- Kubernetes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    return k8s_objects()


def pod_spec(objects: dict[tuple[str, str], dict[str, Any]], kind: str, name: str) -> Any:
    return objects[(kind, name)]["spec"]["template"]["spec"]


def test_k8s_manifests_are_namespace_agnostic(objects: dict[tuple[str, str], Any]) -> None:
    assert {kind for kind, _ in objects} >= {
        "Secret",
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "Job",
        "PersistentVolumeClaim",
        "NetworkPolicy",
    }
    for key, doc in objects.items():
        assert "namespace" not in doc["metadata"], key
        assert doc["apiVersion"] and doc["metadata"]["labels"]["app.kubernetes.io/name"]


def test_k8s_deployment_runs_two_non_root_replicas(objects: dict[tuple[str, str], Any]) -> None:
    deployment = objects[("Deployment", "udesk-bridge")]
    assert deployment["spec"]["replicas"] == 2
    spec = pod_spec(objects, "Deployment", "udesk-bridge")
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == APP_UID
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["args"] == ["run", "--no-migrate"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "writable /tmp on a read-only root"
    claim = volumes[mounts[MEDIA_DIR]]["persistentVolumeClaim"]["claimName"]
    pvc = objects[("PersistentVolumeClaim", claim)]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "shared by the replicas"


def test_k8s_probes_and_shutdown(objects: dict[tuple[str, str], Any]) -> None:
    spec = pod_spec(objects, "Deployment", "udesk-bridge")
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    assert ports["http"] == 8080
    grace = spec["terminationGracePeriodSeconds"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert grace == 30 and pre_stop + 20 <= grace, "preStop + the bridge's ~20 s drain fit"


def test_k8s_resources(objects: dict[tuple[str, str], Any]) -> None:
    (container,) = pod_spec(objects, "Deployment", "udesk-bridge")["containers"]
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "256Mi"}


def test_k8s_env_sources_exist(objects: dict[tuple[str, str], Any]) -> None:
    for kind, name in [("Deployment", "udesk-bridge"), ("Job", "udesk-bridge-migrate")]:
        (container,) = pod_spec(objects, kind, name)["containers"]
        for source in container["envFrom"]:
            if "configMapRef" in source:
                assert ("ConfigMap", source["configMapRef"]["name"]) in objects
            else:
                assert ("Secret", source["secretRef"]["name"]) in objects


def test_k8s_migration_job(objects: dict[tuple[str, str], Any]) -> None:
    job = objects[("Job", "udesk-bridge-migrate")]
    assert 1 <= job["spec"]["backoffLimit"] <= 6
    spec = pod_spec(objects, "Job", "udesk-bridge-migrate")
    assert spec["restartPolicy"] in {"Never", "OnFailure"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["args"] == ["migrate"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (server,) = pod_spec(objects, "Deployment", "udesk-bridge")["containers"]
    assert container["image"] == server["image"], "migrate with the release being rolled out"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "migration-job.yaml" not in kustomization["resources"], "run before the rollout"


def test_k8s_service_selects_the_server_pods_only(objects: dict[tuple[str, str], Any]) -> None:
    service = objects[("Service", "udesk-bridge")]
    selector = service["spec"]["selector"].items()
    server_labels = objects[("Deployment", "udesk-bridge")]["spec"]["template"]["metadata"]
    job_labels = objects[("Job", "udesk-bridge-migrate")]["spec"]["template"]["metadata"]
    assert selector <= server_labels["labels"].items()
    assert not selector <= job_labels["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"


def ingresses(objects: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    return [doc for (kind, _), doc in objects.items() if kind == "Ingress"]


def ingress_paths(ingress: dict[str, Any]) -> dict[str, str]:
    return {
        item["path"]: item["pathType"]
        for rule in ingress["spec"]["rules"]
        for item in rule["http"]["paths"]
    }


def test_k8s_ingress_exposes_only_the_public_paths(objects: dict[tuple[str, str], Any]) -> None:
    paths: dict[str, str] = {}
    public_url = objects[("ConfigMap", "udesk-bridge-config")]["data"]["PUBLIC_URL"]
    for ingress in ingresses(objects):
        for rule in ingress["spec"]["rules"]:
            for item in rule["http"]["paths"]:
                assert item["backend"]["service"]["name"] == "udesk-bridge"
        assert not paths.keys() & ingress_paths(ingress).keys(), "a path in two Ingresses"
        paths |= ingress_paths(ingress)
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) <= 10
        hosts = {h for t in ingress["spec"]["tls"] for h in t["hosts"]}
        assert {r["host"] for r in ingress["spec"]["rules"]} <= hosts, "HTTPS for every host"
        assert public_url == f"https://{ingress['spec']['rules'][0]['host']}"
    assert set(paths) == PUBLIC_PATHS
    assert paths["/telegram/webhook"] == "Exact"
    issuers = [i for i in ingresses(objects) if "cert-manager.io/cluster-issuer" in i["metadata"]]
    assert len(issuers) <= 1, "one owner of the certificate the Ingresses share"


ACCESS_LOG = "nginx.ingress.kubernetes.io/enable-access-log"


def test_k8s_ingress_access_log_hides_the_push_secret(
    objects: dict[tuple[str, str], Any],
) -> None:
    """/udesk/<kind>/<UDESK_PUSH_SECRET> must not reach ingress-nginx's access log (its log
    format is cluster-wide, so the /udesk/ paths get an Ingress with the log off); the other
    public paths stay logged. No snippet annotations: off by default since ingress-nginx 1.9."""
    for ingress in ingresses(objects):
        annotations = ingress["metadata"].get("annotations", {})
        assert not any(key.endswith("-snippet") for key in annotations)
        logged = annotations.get(ACCESS_LOG, "true") != "false"
        for path in ingress_paths(ingress):
            name = ingress["metadata"]["name"]
            if path.startswith("/udesk/"):
                assert not logged, f"{name}: {path} would log UDESK_PUSH_SECRET"
            else:
                assert logged, f"{name}: {path} need not lose its access log"


def test_k8s_network_policy_admits_ingress_and_monitoring_only(
    objects: dict[tuple[str, str], Any],
) -> None:
    policy = objects[("NetworkPolicy", "udesk-bridge")]["spec"]
    server_labels = objects[("Deployment", "udesk-bridge")]["spec"]["template"]["metadata"]
    assert policy["podSelector"]["matchLabels"].items() <= server_labels["labels"].items()
    namespaces = set()
    for rule in policy["ingress"]:
        assert rule["from"], "an empty `from` would admit everyone"
        assert [p["port"] for p in rule["ports"]] == [8080], "the bridge's containerPort"
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector"}
            namespaces.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
    assert namespaces == {"ingress-nginx", "monitoring"}


def test_k8s_kustomization_builds() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed; the resource list was checked")
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc}
    assert "Secret" not in kinds and "Job" not in kinds


def test_k8s_manifests_match_the_api_schemas() -> None:
    validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate for schema checks"
    )
    for doc in k8s_objects().values():
        validate.validate(doc, "1.32", strict=True)  # raises on unknown or mistyped fields


def test_every_shell_command_in_comments_names_existing_files() -> None:
    """`cp deploy/…`/`-f …` in the instructions point at files that exist."""
    for path in deploy_text_files():
        for match in re.finditer(r"\bdeploy/[\w./-]+", path.read_text()):
            target = match.group(0).rstrip(".")
            if target.endswith(("bridge.env", "/.env")):
                continue  # the operator's own copies
            assert (ROOT / target).exists(), f"{path.name} mentions {target}"
