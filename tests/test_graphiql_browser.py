"""GraphiQL in a real browser, offline: Debian's Chromium, headless, opens /graphql on a real
server process, runs a balance query with a service token from the headers editor, and the
result pane shows the balance; no request the page makes leaves 127.0.0.1."""

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from graphql_ledger.graphiql import cdn_files
from tests.support import (
    GraphQLClient,
    ServerProcess,
    clean_environment,
    service_headers,
)
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
    # GraphiQL asks for the schema as it opens, before the headers editor holds a token: the
    # result pane shows the refusal, which the query's result replaces below.
    wait.until(lambda driver: "UNAUTHENTICATED" in text_of(driver, RESULT))

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
