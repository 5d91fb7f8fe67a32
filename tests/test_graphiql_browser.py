"""GraphiQL in a real browser, offline: Debian's Chromium, headless, opens /graphql on a real
server process. In development (`graphql-ledger serve` on the embedded database) the page
opens ready: the schema loaded with the development token from the Headers editor, Docs
open, completion working, the first example runs as it stands and a typed query runs. In
production it opens with no token and a line saying how to add one; with a token pasted,
a query runs. No request the page makes leaves 127.0.0.1."""

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import jwt
import psutil
import pytest

from graphql_ledger.graphiql import FIRST_EXAMPLE, PRODUCTION_HINT, cdn_files
from tests.support import (
    CLI,
    GraphQLClient,
    ServerProcess,
    clean_environment,
    free_port,
    service_headers,
)
from tests.test_cli import postgres_processes
from tests.test_graphiql import require_assets, stock_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="Debian's chromium and chromium-driver are not installed "
        "(apt-get install chromium chromium-driver)",
    ),
]

WAIT = 30.0  # seconds for any one step in the browser
# URL schemes that never reach a network: the page's inline favicon and fonts, and the new
# tab page Chromium shows before the test navigates.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-untrusted"}


@pytest.fixture
def server(new_database: Callable[..., str]) -> Iterator[ServerProcess]:
    require_assets()
    env = clean_environment(HEALTHAI_DATABASE_URL=new_database("graphiql"))
    with ServerProcess.uvicorn("healthai", env) as process:
        yield process


@pytest.fixture
def development_server() -> Iterator[tuple[ServerProcess, Path]]:
    """`graphql-ledger serve healthai` as `make run` starts it: the embedded database in a
    fresh data folder (a short path: its socket lives there), no token key configured."""
    require_assets()
    data_dir = Path(tempfile.mkdtemp(prefix="lg", dir="/tmp"))
    port = free_port()
    env = clean_environment(LEDGER_DATA_DIR=str(data_dir), LEDGER_JWT_SECRET=None)
    try:
        with ServerProcess([str(CLI), "serve", "healthai", "--port", str(port)], env, [port]) as s:
            yield s, data_dir
    finally:
        for process in postgres_processes(data_dir):  # only after a failure
            process.terminate()
        psutil.wait_procs(postgres_processes(data_dir), timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1400,900",
        # Belt and braces: no host but loopback even resolves, so nothing could leave even
        # if the page asked; the performance log below still records what it asked for.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any, seen: list[str]) -> list[str]:
    """Every URL the page asked for so far (DevTools' network events), added to `seen`:
    reading the performance log empties it."""
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            seen.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            seen.append(message["params"]["url"])
    return seen


def assert_only_loopback(urls: list[str]) -> list[str]:
    """The URLs that went to a network, each of which must be 127.0.0.1."""
    network = [url for url in urls if urlsplit(url).scheme not in LOCAL_SCHEMES]
    assert network, urls
    for url in network:
        parts = urlsplit(url)
        assert parts.scheme in ("http", "ws") and parts.hostname == "127.0.0.1", url
    return network


# GraphiQL's editors are CodeMirror 5 instances, each reachable as `.CodeMirror` on its
# element. Typing keystrokes into them is not deterministic (auto-closed brackets, the
# autocompletion popup taking Enter), so the test sets their text through that API, which
# fires the same change events typing does; clicks (the Headers tab, the run button) are real.
EDITOR = "document.querySelector(arguments[0]).CodeMirror"
QUERY_EDITOR = ".graphiql-query-editor .graphiql-editor .CodeMirror"
# The editor tools hold the variables and the headers editors, the inactive one hidden.
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
RESULT = ".result-window .CodeMirror"
DOCS = ".graphiql-doc-explorer"
HINTS = ".CodeMirror-hints li"


def set_text(driver: Any, selector: str, text: str) -> None:
    driver.execute_script(f"{EDITOR}.setValue(arguments[1])", selector, text)


def text_of(driver: Any, selector: str) -> str:
    value: str = driver.execute_script(f"return {EDITOR}.getValue()", selector)
    return value


def test_graphiql_runs_a_balance_query_offline(server: ServerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    owner = f"owner-{uuid.uuid4()}"
    with httpx.Client(base_url=server.url(), headers=service_headers("healthai")) as http:
        ledger = GraphQLClient(http)
        ledger.create_entry(owner, "CREDIT_ADD", "graphiql-1")
        balance = ledger.create_entry(owner, "SIGNUP_CREDIT", "graphiql-2")["balanceAfter"]
    assert balance == 13

    wait = WebDriverWait(browser, WAIT)
    browser.get(f"{server.url()}/graphql")
    urls: list[str] = []
    assert_only_loopback(requested_urls(browser, urls))  # before a blank page times out
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, RESULT))
    # In production the page holds no token: its first line says how to add one, and the
    # schema it asks for as it opens is refused, which the result pane shows.
    assert text_of(browser, QUERY_EDITOR).splitlines()[0] == PRODUCTION_HINT
    wait.until(lambda driver: "UNAUTHENTICATED" in text_of(driver, RESULT))
    assert browser.find_elements(By.CSS_SELECTOR, DOCS) == []  # no schema, so no Docs panel

    browser.find_element(By.XPATH, "//button[normalize-space()='Headers']").click()
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, HEADERS_EDITOR))
    set_text(browser, HEADERS_EDITOR, json.dumps(service_headers("healthai")))
    query = f'query OwnersBalance {{ balance(ownerId: "{owner}") {{ ownerId balance }} }}'
    set_text(browser, QUERY_EDITOR, query)
    assert text_of(browser, QUERY_EDITOR) == query

    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    wait.until(lambda driver: '"data"' in text_of(driver, RESULT))
    result = json.loads(text_of(browser, RESULT))
    assert result == {"data": {"balance": {"ownerId": owner, "balance": balance}}}

    network = assert_only_loopback(requested_urls(browser, urls))
    # GraphiQL's own files came from the app, each of them.
    assets = {url for url in network if "/graphql/static/graphiql/" in url}
    assert len(assets) == len(cdn_files(stock_page())), network


def test_in_development_graphiql_opens_ready_to_run(
    development_server: tuple[ServerProcess, Path], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    server, data_dir = development_server
    wait = WebDriverWait(browser, WAIT)
    browser.get(f"{server.url()}/graphql")
    urls: list[str] = []
    assert_only_loopback(requested_urls(browser, urls))

    # No click: the Docs panel is open and lists the root types, so the schema was fetched
    # with the token the Headers editor holds.
    wait.until(lambda driver: "Query" in driver.find_element(By.CSS_SELECTOR, DOCS).text)
    docs = browser.find_element(By.CSS_SELECTOR, DOCS).text
    assert "Query" in docs and "Mutation" in docs and "Subscription" in docs, docs
    assert "Error fetching schema" not in docs
    example = text_of(browser, QUERY_EDITOR)
    assert example.endswith(FIRST_EXAMPLE) and example.startswith("# healthai in development")

    browser.find_element(By.XPATH, "//button[normalize-space()='Headers']").click()
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, HEADERS_EDITOR))
    headers = json.loads(text_of(browser, HEADERS_EDITOR))
    scheme, token = headers["Authorization"].split()
    claims = jwt.decode(
        token, (data_dir / "jwt-secret").read_text().strip(), ["HS256"], audience="healthai"
    )
    assert scheme == "Bearer" and claims["scope"] == "ledger:service"

    # The example runs as it stands: alice's first 10 credits.
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    wait.until(lambda driver: '"data"' in text_of(driver, RESULT))
    entry = json.loads(text_of(browser, RESULT))["data"]["createEntry"]
    assert (entry["__typename"], entry["amount"], entry["balanceAfter"]) == ("LedgerEntry", 10, 10)

    # Typed: completion offers the schema's fields, and the query runs with Ctrl-Enter.
    set_text(browser, QUERY_EDITOR, "")
    browser.find_element(By.CSS_SELECTOR, QUERY_EDITOR).click()
    typing = browser.switch_to.active_element
    typing.send_keys("{ bal")
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, HINTS))
    offered = [hint.text for hint in browser.find_elements(By.CSS_SELECTOR, HINTS)]
    assert {"balance", "balances"} <= set(offered), offered
    typing.send_keys(Keys.ESCAPE, 'ance(ownerId: "alice") { balance } }')
    assert text_of(browser, QUERY_EDITOR) == '{ balance(ownerId: "alice") { balance } }'
    typing.send_keys(Keys.CONTROL, Keys.ENTER)
    wait.until(lambda driver: '"balance": {' in text_of(driver, RESULT))
    assert json.loads(text_of(browser, RESULT)) == {"data": {"balance": {"balance": 10}}}
    assert_only_loopback(requested_urls(browser, urls))
