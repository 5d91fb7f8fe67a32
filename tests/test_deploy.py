"""The deployment files stay in step with the code: compose runs the migrations before
both apps, and the image holds every package the project installs. (No Docker engine runs
here, so the containers themselves are not started.)"""

import re
import tomllib
from importlib import import_module

import yaml
from starlette.applications import Starlette

from graphql_ledger.registry import registered_apps
from tests.support import ROOT


def test_compose_migrates_then_serves_every_registered_app() -> None:
    services = yaml.safe_load((ROOT / "compose.yml").read_text())["services"]

    assert services["migrate"]["command"] == ["graphql-ledger", "migrate"]
    for app in registered_apps():
        service = services[app]
        module = service["command"][service["command"].index("uvicorn") + 1]
        assert module == f"{app}.app:app"
        assert isinstance(import_module(f"{app}.app").app, Starlette)
        assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")


def test_the_image_holds_every_package_and_the_migrations() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE))
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]

    assert {pattern.rstrip("*") for pattern in packages} | {"migrations"} <= copied
