"""Static checks of the scale-out stack: docker-compose.yaml, Dockerfile, .env.example, .dockerignore.

Fast and without Spark or Docker: the file is parsed with PyYAML. Only the last test asks the
``docker compose`` CLI to validate the file, and skips when no CLI with the compose plugin is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pitlake.core.settings import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

LAKE_VOLUME = "lake"
LAKE_PATH = "/opt/pitlake-data"
CODE_ROOT = "/opt/pitlake"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
SPARK_SERVICES = ("spark-master", "spark-worker")
LAKE_SERVICES = (*AIRFLOW_SERVICES, *SPARK_SERVICES, "mlflow", "serving")
REQUIRED_SERVICES = ("postgres", "redis", *LAKE_SERVICES)

# ${VAR}, ${VAR:-default}, ${VAR:?error}, $VAR; not the escaped $${VAR} / $$VAR (a variable of the container).
_COMPOSE_VAR = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")
_ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(_compose_text())
    assert isinstance(data, dict), "docker-compose.yaml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svc = compose.get("services")
    assert isinstance(svc, dict) and svc, "docker-compose.yaml has no services"
    return svc


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's own substitution, enough for these files: ${VAR}, ${VAR:-d}, ${VAR:?e}, $$ -> $."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in env:
            return env[name]
        default = re.match(r"\$\{[A-Za-z0-9_]+:?-([^}]*)\}", m.group(0))
        return default.group(1) if default else ""

    return _COMPOSE_VAR.sub(repl, value).replace("$$", "$")


def _env_example() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = _ENV_LINE.match(line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    return env


def _environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def _volumes(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) for the short and the long volume syntax."""
    out: list[tuple[str, str, bool]] = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((str(vol.get("source", "")), str(vol["target"]), bool(vol.get("read_only", False))))
        else:
            parts = str(vol).split(":")
            assert len(parts) in (2, 3), f"volume {vol!r}: expected source:target[:mode]"
            out.append((parts[0], parts[1], len(parts) == 3 and "ro" in parts[2].split(",")))
    return out


def _command_strings(service: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("command", "entrypoint"):
        value = service.get(key)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(str(v) for v in value)
    return out


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    assert not missing, f"docker-compose.yaml lacks services {missing}"
    assert str(services["postgres"]["image"]).startswith("postgres:16")
    assert "healthcheck" in services["postgres"]


def test_airflow_services_run_the_pitlake_image_with_the_local_executor(services: dict[str, dict[str, Any]]) -> None:
    expected_command = {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    for name, command in expected_command.items():
        assert services[name].get("command") == command, f"{name} must run `airflow {command}`"
    assert "127.0.0.1:8080:8080" in [_interpolate(str(p), {}) for p in services["airflow-apiserver"].get("ports", [])]
    for name in (*AIRFLOW_SERVICES, *SPARK_SERVICES, "mlflow"):
        assert services[name].get("image") == "pitlake:local", f"{name} must run the image built from the Dockerfile"
        if name in AIRFLOW_SERVICES:
            env = _environment(services[name])
            assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
            assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
            assert "@postgres:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
    builders = [name for name, svc in services.items() if svc.get("build")]
    assert builders, "no service builds the image (build: .)"
    for name in builders:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (REPO_ROOT / context / "Dockerfile").resolve() == DOCKERFILE.resolve(), name


def test_bind_mount_sources_exist(services: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for name, svc in services.items():
        for source, target, _ro in _volumes(svc):
            if source.startswith((".", "/")):
                checked += 1
                assert (REPO_ROOT / source).exists(), f"{name}: bind mount source {source} is not in the repository"
                if target.startswith(CODE_ROOT + "/"):
                    rel = target.removeprefix(CODE_ROOT + "/")
                    assert Path(source).parts[-1] == Path(rel).parts[-1], f"{name}: {source} mounted at {target}"
    assert checked, "expected the repository folders (./dags, ./jobs, ...) to be bind-mounted"


def test_repository_paths_in_commands_and_settings_exist(services: dict[str, dict[str, Any]]) -> None:
    """jobs/<x>.py and /opt/pitlake/<path> (the repository inside the image) must name real files."""
    texts: list[str] = []
    for svc in services.values():
        texts.extend(_command_strings(svc))
        texts.extend(_environment(svc).values())
    seen = 0
    for text in texts:
        for match in re.finditer(rf"(?<![\w-]){re.escape(CODE_ROOT)}/([\w./-]+)", text):
            seen += 1
            assert (REPO_ROOT / match.group(1)).exists(), f"{match.group(0)} does not exist as {match.group(1)}"
        for match in re.finditer(r"(?<![\w/-])(jobs/\w+\.py)", text):
            seen += 1
            assert (REPO_ROOT / match.group(1)).exists(), f"{match.group(1)} is not in the repository"
    assert seen, "expected at least the DAGs folder /opt/pitlake/dags to be referenced"


def test_lake_volume_is_mounted_at_the_same_path_everywhere(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert LAKE_VOLUME in (compose.get("volumes") or {}), "the named volume `lake` must be declared"
    for name in LAKE_SERVICES:
        targets = [target for source, target, _ro in _volumes(services[name]) if source == LAKE_VOLUME]
        assert targets == [LAKE_PATH], f"{name} mounts the lake at {targets}, expected [{LAKE_PATH!r}]"
        env = _environment(services[name])
        assert env.get("PITLAKE_HOME") == LAKE_PATH, f"{name}: PITLAKE_HOME must be the lake mount {LAKE_PATH}"
    mlflow_cmd = " ".join(_command_strings(services["mlflow"]))
    assert f"--backend-store-uri sqlite:///{LAKE_PATH}/" in mlflow_cmd, "MLflow's store must live on the lake"
    assert f"--artifacts-destination {LAKE_PATH}/" in mlflow_cmd
    assert "--host 0.0.0.0 --port 5000" in mlflow_cmd
    allowed = re.search(r"--allowed-hosts (\S+)", mlflow_cmd)
    assert allowed and {"mlflow", "mlflow:5000", "localhost:5000"} <= set(allowed.group(1).split(","))


def test_spark_connection_points_at_the_spark_master(services: dict[str, dict[str, Any]]) -> None:
    master_cmd = [str(c) for c in services["spark-master"]["command"]]
    assert "org.apache.spark.deploy.master.Master" in master_cmd
    port = int(master_cmd[master_cmd.index("--port") + 1]) if "--port" in master_cmd else 7077
    worker_cmd = [str(c) for c in services["spark-worker"]["command"]]
    assert "org.apache.spark.deploy.worker.Worker" in worker_cmd
    assert f"spark://spark-master:{port}" in worker_cmd
    for name in AIRFLOW_SERVICES:
        conn = json.loads(_environment(services[name])["AIRFLOW_CONN_SPARK_DEFAULT"])
        assert conn["conn_type"] == "spark", name
        host = urlsplit(conn["host"])
        assert host.scheme == "spark" and host.hostname in services, f"{name}: {conn['host']} is not a service"
        assert host.hostname == "spark-master" and int(conn["port"]) == port, f"{name}: {conn}"


def test_mlflow_tracking_uri_points_at_the_mlflow_service(services: dict[str, dict[str, Any]]) -> None:
    # pitlake.core.settings reads MLFLOW_TRACKING_URI (MLflow's own variable).
    settings_src = (REPO_ROOT / "include" / "pitlake" / "core" / "settings.py").read_text()
    assert '_env("MLFLOW_TRACKING_URI")' in settings_src
    for name in AIRFLOW_SERVICES:
        assert _environment(services[name]).get("MLFLOW_TRACKING_URI") == "http://mlflow:5000", name
    assert "127.0.0.1:5000:5000" in [str(p) for p in services["mlflow"].get("ports", [])]


def test_every_compose_variable_is_in_env_example() -> None:
    used = {m.group(1) or m.group(2) for m in _COMPOSE_VAR.finditer(_compose_text())}
    defined = _env_example()
    assert used, "expected secrets to come from .env as ${VAR}"
    missing = sorted(used - defined.keys())
    assert not missing, f".env.example lacks {missing}"
    for secret in ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "_AIRFLOW_WWW_USER_PASSWORD"):
        assert secret in used, f"{secret} must come from .env"


def test_no_literal_secrets_in_compose(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["airflow-scheduler"])
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert _COMPOSE_VAR.fullmatch(env[key]), f"{key} must be a ${{VAR}} from .env, not {env[key]!r}"
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    password = urlsplit(_interpolate(conn, {"POSTGRES_PASSWORD": "sentinel-pw"})).password
    assert password == "sentinel-pw", "the DB password must come from ${POSTGRES_PASSWORD}"
    pg_env = _environment(services["postgres"])
    assert pg_env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_env_file_is_git_ignored_and_not_in_the_image() -> None:
    assert ".env" in (REPO_ROOT / ".gitignore").read_text().splitlines()
    dockerignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    for entry in (".env", ".venv", ".pitlake", ".git", "mlruns"):
        assert entry in dockerignore, f".dockerignore must exclude {entry}"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    out = []
    for item in joined:
        keyword, _, args = item.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def test_dockerfile_base_image_and_copy_sources() -> None:
    instructions = _dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert froms == ["apache/airflow:3.3.2-python3.11"]
    dockerignore = {line.strip().rstrip("/") for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    copies = [args for keyword, args in instructions if keyword in ("COPY", "ADD")]
    assert copies, "the Dockerfile must COPY the repository"
    copied: set[str] = set()
    for args in copies:
        parts = [p for p in args.split() if not p.startswith("--")]
        assert len(parts) >= 2, args
        for source in parts[:-1]:
            assert (REPO_ROOT / source).exists(), f"COPY source {source} is not in the repository"
            assert source.rstrip("/") not in dockerignore, f"COPY source {source} is excluded by .dockerignore"
            copied.add(source.rstrip("/"))
    for needed in ("requirements.txt", "pyproject.toml", "README.md", "include", "jobs", "dags", "plugins", "conf"):
        assert needed in copied, f"the Dockerfile must COPY {needed}"
    text = DOCKERFILE.read_text()
    assert "openjdk-17-jre-headless" in text and "procps" in text
    assert "python -m pitlake install-jars" in text
    assert re.search(r"ENV .*PITLAKE_HOME=" + re.escape(LAKE_PATH), text.replace("\\\n", " "))
    # the editable install keeps pitlake.core.settings.REPO_ROOT at the repository copy (jobs/, conf/)
    assert f"pip install --no-cache-dir --no-deps -e {CODE_ROOT}" in text
    assert text.index("COPY --chown=airflow:0 requirements.txt") < text.index("COPY --chown=airflow:0 include/")


def _compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


def test_docker_compose_config_is_valid() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    proc = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_published_ports_bind_to_loopback_unless_env_says_otherwise(services: dict[str, dict[str, Any]]) -> None:
    published = {name: [str(p) for p in svc.get("ports") or []] for name, svc in services.items() if svc.get("ports")}
    assert published, "expected the UIs to be published"
    for name, ports in published.items():
        for port in ports:
            assert _interpolate(port, {}).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
            opened = _interpolate(port, {"PITLAKE_BIND_ADDRESS": "0.0.0.0"})
            # MLflow and the serving app have no login here: they stay on loopback whatever .env says.
            assert opened.startswith("127.0.0.1:") == (name in ("mlflow", "serving")), (name, port)


def test_demo_mode_is_off_unless_env_turns_it_on(services: dict[str, dict[str, Any]]) -> None:
    for name in (*AIRFLOW_SERVICES, *SPARK_SERVICES):
        raw = _environment(services[name]).get("PITLAKE_DEMO")
        assert raw is not None and _interpolate(raw, {}) == "0", (name, raw)
    assert _env_example()["PITLAKE_DEMO"] == "0"


def test_the_airflow_password_file_is_only_on_airflow_volumes(services: dict[str, dict[str, Any]]) -> None:
    path = _environment(services["airflow-apiserver"])["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    holders = {
        name: source
        for name, svc in services.items()
        for source, target, _ in _volumes(svc)
        if path.startswith(target.rstrip("/") + "/")
    }
    assert set(holders) == set(AIRFLOW_SERVICES), holders  # not spark-*, not mlflow
    assert all(source == "airflow-secrets" for source in holders.values()), holders
    assert not path.startswith(LAKE_PATH + "/")


def test_airflow_init_checks_the_secrets_before_anything_else(services: dict[str, dict[str, Any]]) -> None:
    script = services["airflow-init"]["command"][-1]
    steps = [line.strip() for line in script.splitlines() if line.strip()]
    assert steps[:2] == ["set -euo pipefail", "/entrypoint python -m pitlake.airflow.secrets_check"], steps[:3]
    env = _environment(services["airflow-init"])
    from pitlake.airflow.secrets_check import FERNET, SECRETS

    assert set(SECRETS) | {FERNET[0]} <= set(env), "airflow-init must see every secret it checks"


def test_serving_reads_the_redis_store_the_materialize_tasks_write(services: dict[str, dict[str, Any]]) -> None:
    serving, scheduler = _environment(services["serving"]), _environment(services["airflow-scheduler"])
    for env in (serving, scheduler):
        assert env["PITLAKE_ONLINE_STORE"] == "redis"
        url = urlsplit(_interpolate(env["PITLAKE_REDIS_URL"], {"REDIS_PASSWORD": "sentinel-pw"}))
        assert (url.hostname, url.port, url.password) == ("redis", 6379, "sentinel-pw")
    assert "--requirepass" in " ".join(_command_strings(services["redis"]))
    assert not services["redis"].get("ports"), "Redis stays inside the compose network"
    assert services["serving"]["command"] == ["python", "-m", "pitlake", "serve", "--host", "0.0.0.0", "--port", "8000"]


def test_ingest_products_pulls_from_the_catalog_api_service(services: dict[str, dict[str, Any]]) -> None:
    api = services["catalog-api"]
    assert api["command"] == ["python", "-m", "pitlake", "catalog-api", "--host", "0.0.0.0"]
    assert not api.get("ports"), "the catalog API stays inside the compose network"
    for name in ("airflow-scheduler", "airflow-apiserver"):
        url = urlsplit(_environment(services[name])["PITLAKE_CATALOG_API_URL"])
        assert (url.hostname, url.port) == ("catalog-api", 8765)
    assert urlsplit(_environment(api)["PITLAKE_CATALOG_API_URL"]).port == 8765


def test_the_secrets_check_refuses_the_example_values_and_accepts_real_ones() -> None:
    from cryptography.fernet import Fernet
    from pitlake.airflow.secrets_check import problems

    example = _env_example()
    as_in_container = {
        "POSTGRES_PASSWORD": example["POSTGRES_PASSWORD"],
        "AIRFLOW__API_AUTH__JWT_SECRET": example["AIRFLOW_JWT_SECRET"],
        "AIRFLOW__API__SECRET_KEY": example["AIRFLOW_API_SECRET_KEY"],
        "_AIRFLOW_WWW_USER_PASSWORD": example["_AIRFLOW_WWW_USER_PASSWORD"],
        "REDIS_PASSWORD": example["REDIS_PASSWORD"],
        "AIRFLOW__CORE__FERNET_KEY": example["AIRFLOW_FERNET_KEY"],
    }
    found = problems(as_in_container)
    assert [line.split(" ")[0] for line in found] == [
        "POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "_AIRFLOW_WWW_USER_PASSWORD",
        "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY",
    ]  # fmt: skip
    assert "is not a Fernet key" in found[-1] and "'change-me'" in found[0]
    good = {k: "s3cr3t-" + k.lower() for k in as_in_container} | {
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()
    }
    assert problems(good) == []
    assert len(problems(good | {"AIRFLOW__CORE__FERNET_KEY": "dG9vIHNob3J0"})) == 1  # base64, but not 32 bytes
    assert len(problems(good | {"POSTGRES_PASSWORD": ""})) == 1


def test_the_plugin_and_one_lineage_config_reach_every_airflow_service(services: dict[str, dict[str, Any]]) -> None:
    """The pitlake UI plugin is mounted where Airflow looks for plugins, and Airflow's OpenLineage provider
    and pitlake's jobs read the same client config: the file transport by default, Marquez with its profile."""
    env_example = _env_example()
    for name in AIRFLOW_SERVICES:
        env = _environment(services[name])
        assert ("./plugins", f"{CODE_ROOT}/plugins", True) in _volumes(services[name]), name
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{CODE_ROOT}/plugins", name
        configs = {
            _interpolate(env[k], env_example) for k in ("OPENLINEAGE_CONFIG", "AIRFLOW__OPENLINEAGE__CONFIG_PATH")
        }
        assert configs == {f"{CODE_ROOT}/conf/openlineage/file.yml"}, name
    for choice, transport in (("file", "file"), ("marquez", "http")):
        config = yaml.safe_load((REPO_ROOT / "conf" / "openlineage" / f"{choice}.yml").read_text())
        assert config["transport"]["type"] == transport
    lineage_file = yaml.safe_load((REPO_ROOT / "conf" / "openlineage" / "file.yml").read_text())
    assert lineage_file["transport"]["log_file_path"].startswith(f"{LAKE_PATH}/lineage/")
    marquez = yaml.safe_load((REPO_ROOT / "conf" / "openlineage" / "marquez.yml").read_text())
    assert urlsplit(marquez["transport"]["url"]).hostname == "marquez"
    # Marquez and its database only run with the profile; nothing else depends on them.
    for name in ("marquez", "marquez-web", "marquez-db"):
        assert services[name]["profiles"] == ["marquez"], name
    assert all(
        "marquez" not in str(s.get("depends_on", "")) for n, s in services.items() if not n.startswith("marquez")
    )
