"""The deployment files stay in step with the code: compose runs the migrations before
both apps, and the image holds every package the project installs. (No Docker engine runs
here, so the containers themselves are not started.)"""

import re
import tomllib
from importlib import import_module

import yaml
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from graphql_ledger.registry import registered_apps
from tests.support import ROOT


def test_compose_runs_postgres_with_a_volume_and_a_health_check() -> None:
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    postgres = compose["services"]["postgres"]
    [volume] = postgres["volumes"]
    assert volume.endswith(":/var/lib/postgresql/data")
    assert volume.split(":")[0] in compose["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_compose_migrates_then_serves_every_registered_app() -> None:
    services = yaml.safe_load((ROOT / "compose.yml").read_text())["services"]

    assert services["migrate"]["command"] == ["graphql-ledger", "migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "restart" not in services["migrate"]  # one-shot
    for app in registered_apps():
        service = services[app]
        module = service["command"][service["command"].index("uvicorn") + 1]
        assert module == f"{app}.app:app"
        assert isinstance(import_module(f"{app}.app").app, Starlette)
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["LEDGER_JWT_SECRET"]
        probe = " ".join(service["healthcheck"]["test"])
        assert "/readyz" in probe and ":8000/" in probe
        [port] = service["ports"]
        assert port.startswith("127.0.0.1:") and port.endswith(":8000")
    host_ports = [services[app]["ports"][0].split(":")[1] for app in registered_apps()]
    assert host_ports == [str(8000 + n) for n in range(len(host_ports))]


def test_the_image_holds_every_package_and_the_migrations() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE))
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]

    assert {pattern.rstrip("*") for pattern in packages} | {"migrations"} <= copied


def test_compose_serves_as_a_member_of_the_serving_role_and_migrates_as_the_owner() -> None:
    """The apps log in as ledger_app, which the database's first start creates in
    ledger_serving with the password their URL holds; `migrate` logs in as the owner."""
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    services = compose["services"]
    owner = services["postgres"]["environment"]["POSTGRES_USER"]
    assert make_url(services["migrate"]["environment"]["DATABASE_URL"]).username == owner
    [init] = [c for c in services["postgres"]["configs"] if c["source"] == "serving-login"]
    assert init["target"].startswith("/docker-entrypoint-initdb.d/")
    script = compose["configs"][init["source"]]["content"]
    assert "CREATE ROLE ledger_serving NOLOGIN;" in script
    for app in registered_apps():
        url = make_url(services[app]["environment"]["DATABASE_URL"])
        assert url.username == "ledger_app" != owner
        login = f"CREATE ROLE ledger_app LOGIN PASSWORD '{url.password}' IN ROLE ledger_serving;"
        assert login in script


def test_compose_serves_through_pgbouncer_and_reads_on_a_streaming_replica() -> None:
    """The apps' connections go through PgBouncer in transaction mode (so without prepared
    statements), their LISTEN straight to PostgreSQL, and their reads to a hot standby that
    copies the primary with pg_basebackup -R as a login the primary lets stream."""
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    services, configs = compose["services"], compose["configs"]

    bouncer = services["pgbouncer"]
    mounted = {c["target"]: configs[c["source"]]["content"] for c in bouncer["configs"]}
    ini = mounted["/etc/pgbouncer/pgbouncer.ini"]
    assert "pool_mode = transaction" in ini
    assert "* = host=postgres port=5432" in ini
    port = re.search(r"^listen_port = (\d+)$", ini, re.MULTILINE)
    assert port is not None
    assert '"ledger_app" "ledger-app"' in mounted["/etc/pgbouncer/userlist.txt"]
    assert bouncer["depends_on"] == {"postgres": {"condition": "service_healthy"}}

    replica = services["replica"]
    [volume] = replica["volumes"]
    assert volume.split(":")[0] in compose["volumes"]
    assert volume.split(":")[0] != services["postgres"]["volumes"][0].split(":")[0]
    [entrypoint] = replica["configs"]
    assert replica["entrypoint"] == ["bash", entrypoint["target"]]
    script = configs[entrypoint["source"]]["content"]
    assert "pg_basebackup -h postgres -U replicator" in script and " -R " in script
    assert "exec docker-entrypoint.sh postgres" in script
    primary_init = " ".join(
        configs[c["source"]]["content"] for c in services["postgres"]["configs"]
    )
    assert "CREATE ROLE replicator LOGIN REPLICATION PASSWORD 'replicator'" in primary_init
    assert "host replication replicator all scram-sha-256" in primary_init
    assert replica["environment"]["PGPASSWORD"] == "replicator"

    for app in registered_apps():
        environment = services[app]["environment"]
        url = make_url(environment["DATABASE_URL"])
        assert (url.host, url.port) == ("pgbouncer", int(port.group(1)))
        assert environment["LEDGER_DB_STATEMENT_CACHE"] == "0"
        listen = make_url(environment[f"{app.upper()}_LISTEN_DATABASE_URL"])
        assert (listen.host, listen.port, listen.database) == ("postgres", 5432, app)
        read = make_url(environment[f"{app.upper()}_READ_DATABASE_URL"])
        assert (read.host, read.database, read.username) == ("replica", app, "ledger_app")
        assert services[app]["depends_on"]["replica"] == {"condition": "service_started"}
