"""GraphiQL served by the app itself: the page names only the app's own files, which the app
serves with the content the page's integrity hashes name; without them (or with one that
differs) the page is Strawberry's CDN one, and one warning says to run `make assets`. Either
page opens as the mode says: in production with no token and a line on adding one, in
development with the development token and README's first example (the browser test runs
them)."""

import base64
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
from starlette.testclient import TestClient
from strawberry.http.ides import get_graphql_ide_html

from assets.install import install
from graphql_ledger import Settings, create_app
from graphql_ledger.graphiql import (
    CDN,
    DEFAULT_DIRECTORY,
    FIRST_EXAMPLE,
    PRODUCTION,
    PRODUCTION_HINT,
    GraphiQLAssets,
    cdn_files,
    with_setup,
)
from graphql_ledger.view import LedgerGraphQL
from healthai.operations import HealthAIOperation
from tests.support import ROOT, TEST_SECRET
from tests.test_readme import readme_blocks

HTML = {"Accept": "text/html"}
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}


class Tags(HTMLParser):
    """Every <script src> and <link href> of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if (tag == "script" and "src" in attributes) or (tag == "link" and "href" in attributes):
            self.references.append({"tag": tag, **attributes})


def references(page: str) -> list[dict[str, str | None]]:
    tags = Tags()
    tags.feed(page)
    return tags.references


def url_of(reference: dict[str, str | None]) -> str:
    url = reference["src"] if reference["tag"] == "script" else reference["href"]
    assert url is not None
    return url


def require_assets() -> None:
    """The files `make assets` installs: skipped where npm is absent (the Makefile then
    warns and the app serves the CDN page), a failure anywhere else."""
    if all((DEFAULT_DIRECTORY / file.local_path).is_file() for file in cdn_files(stock_page())):
        return
    if shutil.which("npm") is None:
        pytest.skip("GraphiQL's assets are not installed and npm is absent: run `make assets`")
    pytest.fail(f"GraphiQL's assets are missing from {DEFAULT_DIRECTORY}: run `make assets`")


def stock_page() -> str:
    return get_graphql_ide_html("graphiql")


def ledger_view(client: TestClient) -> LedgerGraphQL:
    (view,) = {
        route.endpoint  # type: ignore[attr-defined]
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(getattr(route, "endpoint", None), LedgerGraphQL)
    }
    return view


def sri(content: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()


def test_the_page_loads_only_the_apps_own_files(healthai_app: TestClient) -> None:
    require_assets()
    response = healthai_app.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "unpkg" not in page
    found = references(page)
    # Strawberry's page: React, ReactDOM, js-cookie, GraphiQL, the explorer plugin (JS and CSS).
    local = [reference for reference in found if not url_of(reference).startswith("data:")]
    assert len(local) == len(cdn_files(stock_page())) > 0
    for reference in found:
        url = url_of(reference)
        if url.startswith("data:"):  # the inline favicon
            continue
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url
        assert url.startswith("/graphql/static/graphiql/"), url
        served = healthai_app.get(url)
        assert served.status_code == 200, url
        expected = CONTENT_TYPES[Path(parts.path).suffix]
        assert served.headers["content-type"].split(";")[0] == expected, url
        # The stock page's hash, kept: the browser checks the file is the one it names.
        assert reference["integrity"] == sri(served.content), url


def test_the_page_is_public_and_the_files_need_no_token(healthai_app: TestClient) -> None:
    require_assets()
    healthai_app.headers.clear()
    assert healthai_app.get("/graphql", headers=HTML).status_code == 200
    assert healthai_app.get("/graphql/static/graphiql/nothing.js").status_code == 404
    assert healthai_app.post("/graphql", json={"query": "{ __typename }"}).status_code == 401


def test_without_assets_the_page_is_the_cdn_one_with_one_warning(
    healthai_app: TestClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The app's own view, pointed at an empty directory.
    monkeypatch.setattr(ledger_view(healthai_app), "graphiql", GraphiQLAssets(tmp_path))
    with caplog.at_level(logging.WARNING, logger="graphql_ledger.graphiql"):
        pages = [healthai_app.get("/graphql", headers=HTML) for _ in range(3)]
    assert {page.status_code for page in pages} == {200}
    # Strawberry's page as it stands, its files on the CDN, opening as the app's does.
    assert {page.text for page in pages} == {with_setup(stock_page(), PRODUCTION)}
    warnings = [r for r in caplog.records if r.name == "graphql_ledger.graphiql"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].levelno == logging.WARNING
    assert "make assets" in warnings[0].getMessage()
    assert str(tmp_path) in warnings[0].getMessage()


def test_a_file_that_differs_from_the_pages_hash_means_the_cdn_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_assets()
    shutil.copytree(DEFAULT_DIRECTORY, tmp_path / "graphiql")
    react = next(file for file in cdn_files(stock_page()) if file.package == "react")
    with (tmp_path / "graphiql" / react.local_path).open("a") as script:
        script.write("\n")  # a stale or half-copied file: the browser would refuse it
    assets = GraphiQLAssets(tmp_path / "graphiql")
    with caplog.at_level(logging.WARNING, logger="graphql_ledger.graphiql"):
        assert assets.page() == with_setup(stock_page(), PRODUCTION)
    assert react.local_path in caplog.text
    assert "/prefix/graphql/static/graphiql/" in GraphiQLAssets(DEFAULT_DIRECTORY).page("/prefix")


def test_install_copies_the_pages_files_from_node_modules(tmp_path: Path) -> None:
    node_modules = ROOT / "assets" / "node_modules"
    if not (node_modules / "graphiql").is_dir():
        pytest.skip("assets/node_modules is not there: `make assets` installs it")
    files = install(node_modules, tmp_path / "graphiql")
    # assets/package.json pins exactly the packages and versions Strawberry's page loads.
    pinned = json.loads((ROOT / "assets" / "package.json").read_text())["dependencies"]
    assert {file.package: file.version for file in files} == pinned
    assert "unpkg" not in GraphiQLAssets(tmp_path / "graphiql").page()


def test_install_refuses_a_package_at_another_version(tmp_path: Path) -> None:
    package = tmp_path / "node_modules" / "react"
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "react", "version": "18.3.1"}))
    with pytest.raises(RuntimeError, match=r"react@18\.2\.0.*react@18\.3\.1.*assets/package"):
        install(tmp_path / "node_modules", tmp_path / "graphiql")
    assert not (tmp_path / "graphiql").exists()


def test_a_page_loading_from_another_host_is_served_as_it_is_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What a Strawberry release moving its page to another CDN would look like.
    page = '<script src="https://cdn.invalid/graphiql@9/graphiql.min.js"></script>'
    with caplog.at_level(logging.WARNING, logger="graphql_ledger.graphiql"):
        assert GraphiQLAssets(tmp_path, stock_page=page).page() == page
    assert "https://cdn.invalid/graphiql@9/graphiql.min.js" in caplog.text


def setup_of(page: str) -> dict[str, object]:
    """The value the page's setup script gives GraphiQL (graphiql.py's LEDGER_GRAPHIQL)."""
    start = page.index("const LEDGER_GRAPHIQL = ") + len("const LEDGER_GRAPHIQL = ")
    value: dict[str, object] = json.loads(page[start : page.index(";</script>", start)])
    return value


def test_in_production_the_page_holds_no_token_and_says_how_to_add_one(
    healthai_app: TestClient,
) -> None:
    page = healthai_app.get("/graphql", headers=HTML).text
    setup = setup_of(page)
    assert setup == {"query": setup["query"], "headers": None, "docs": None}
    assert str(setup["query"]).splitlines()[0] == PRODUCTION_HINT
    assert "Bearer ey" not in page
    # What the browser kept from last time stays: the page's headers are GraphiQL's own.
    assert "React.useState(parameters.headers || LEDGER_GRAPHIQL.headers || undefined)" in page


def test_without_npm_the_development_page_loads_the_cdns_files_and_opens_ready(
    tmp_path: Path,
) -> None:
    assets = GraphiQLAssets(tmp_path)  # nothing installed: what `make run` serves without npm
    assets.develop("healthai", "a.b.c")
    page = assets.page()
    loaded = [url_of(reference) for reference in references(page)]
    cdn = [url for url in loaded if url.startswith(CDN)]
    assert len(cdn) == len(cdn_files(stock_page())) > 0
    assert all(ref["integrity"] for ref in references(page) if url_of(ref).startswith(CDN))
    setup = setup_of(page)
    assert json.loads(str(setup["headers"])) == {"Authorization": "Bearer a.b.c"}
    assert setup["docs"] == "Documentation Explorer"  # GraphiQL 3's title of its Docs panel
    assert str(setup["query"]).endswith(FIRST_EXAMPLE)


def test_the_setup_cannot_end_the_script_it_is_in(tmp_path: Path) -> None:
    assets = GraphiQLAssets(tmp_path)
    assets.develop("</script><script>alert(1)//", None)
    page = assets.page()
    assert "</script><script>alert" not in page
    assert str(setup_of(page)["query"]).startswith("# </script><script>alert(1)//")


def test_the_development_page_opens_with_readmes_first_example() -> None:
    first = next(code for language, code in readme_blocks() if language == "graphql")
    assert first == FIRST_EXAMPLE


def test_the_development_page_holds_a_token_only_for_a_browser_on_this_machine(
    new_database: Callable[..., str],
) -> None:
    settings = Settings(
        app_database_urls={"healthai": new_database("graphiql")}, jwt_secret=TEST_SECRET
    )
    app = create_app("healthai", HealthAIOperation, settings, development=True)
    for loopback in ("127.0.0.1", "::1"):
        with TestClient(app, client=(loopback, 50000)) as local:
            headers = json.loads(str(setup_of(local.get("/graphql", headers=HTML).text)["headers"]))
            scheme, token = headers["Authorization"].split()
            claims = jwt.decode(token, TEST_SECRET, ["HS256"], audience="healthai")
            assert (scheme, claims["scope"], claims["sub"]) == (
                "Bearer",
                "ledger:service",
                "developer",
            )
            answer = local.post(
                "/graphql", json={"query": "{ operations { amount } }"}, headers=headers
            )
            assert answer.status_code == 200 and "errors" not in answer.json()
    # From elsewhere (`serve --host 0.0.0.0`, a container's mapped port): no token.
    for elsewhere in ("192.0.2.7", "testclient"):
        with TestClient(app, client=(elsewhere, 50000)) as remote:
            page = remote.get("/graphql", headers=HTML).text
            assert setup_of(page) == {
                "query": setup_of(page)["query"],
                "headers": None,
                "docs": None,
            }
            assert "Bearer ey" not in page
