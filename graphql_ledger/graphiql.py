"""GraphiQL, served ready to use. In development the page opens with the development service
token in its Headers editor (so the schema loads and Docs, autocompletion and validation work
at once), the Docs panel open and a first example in the editor; elsewhere it holds no token
and its editor says in one line how to add one.

The page is Strawberry's, with its CDN files served by the app when `make assets` has copied
them into DEFAULT_DIRECTORY (assets/install.py; laid out as the CDN lays them out, e.g.
`graphiql@3.8.3/graphiql.min.js`) at STATIC_PATH; it keeps its `integrity` hashes, which the
local files are checked against. When a file is missing or differs, the page loads them from
the CDN, and one warning says to run `make assets`."""

import base64
import hashlib
import ipaddress
import json
import logging
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

__all__ = [
    "CDN",
    "DEFAULT_DIRECTORY",
    "FIRST_EXAMPLE",
    "PRODUCTION",
    "PRODUCTION_HINT",
    "STATIC_PATH",
    "CdnFile",
    "GraphiQLAssets",
    "PageSetup",
    "cdn_files",
    "with_setup",
]

logger = logging.getLogger(__name__)

CDN: Final = "https://unpkg.com/"
STATIC_PATH: Final = "/graphql/static/graphiql"
"""Where the app serves the files (below the ASGI root path)."""
DEFAULT_DIRECTORY: Final = Path(__file__).resolve().parent / "static" / "graphiql"
"""Where `make assets` puts the files."""
_PREFIX: Final = "\x00graphiql-static\x00"  # stands for root_path + STATIC_PATH until served

# Directories already warned about: one warning per process, however many apps and requests.
_warned: set[tuple[Path, str]] = set()


@dataclass(frozen=True)
class CdnFile:
    """A file the stock page loads from the CDN: `<CDN><package>@<version>/<path>`."""

    url: str
    package: str
    version: str
    path: str
    integrity: str | None

    @property
    def local_path(self) -> str:
        """The file's path below the assets directory and STATIC_PATH."""
        return f"{self.package}@{self.version}/{self.path}"

    def matches(self, content: bytes) -> bool:
        """Whether `content` is what the page's integrity attribute names (if it names one)."""
        if self.integrity is None:
            return True
        return any(
            _digest(token.partition("-")[0], content) == token for token in self.integrity.split()
        )


def _digest(algorithm: str, content: bytes) -> str | None:
    if algorithm not in ("sha256", "sha384", "sha512"):
        return None
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, content).digest()).decode()}"


class _AssetTags(HTMLParser):
    """Collects the URLs of a page's <script src> and <link href> tags: the CDN's as files,
    any other host's as they are."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[CdnFile] = []
        self.elsewhere: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src" if tag == "script" else "href" if tag == "link" else "")
        if url is None or not url.startswith(CDN):
            if url is not None and url.startswith(("http:", "https:", "//")):
                self.elsewhere.append(url)
            return
        spec = url[len(CDN) :]
        at = spec.find("@", 1)  # after a scope's "@"
        version, _, path = spec[at + 1 :].partition("/")
        if at < 0 or not version or not path:
            raise ValueError(f"unexpected CDN URL in Strawberry's GraphiQL page: {url}")
        package = spec[:at]
        self.files.append(CdnFile(url, package, version, path, attributes.get("integrity")))


def cdn_files(page: str) -> list[CdnFile]:
    """The files `page` loads from the CDN, in the order it names them.

    Raises:
        ValueError: the page loads a file from another host, which `make assets` cannot
            provide (a Strawberry release that changed its page).
    """
    parser = _AssetTags()
    parser.feed(page)
    parser.close()
    if parser.elsewhere:
        raise ValueError(
            f"the GraphiQL page loads files from another host than {CDN}: "
            + ", ".join(parser.elsewhere)
        )
    return parser.files


FIRST_EXAMPLE: Final = """mutation {
  createEntry(input: {ownerId: "alice", operation: CREDIT_ADD, nonce: "purchase-1"}) {
    __typename
    ... on LedgerEntry { id operation amount balanceAfter createdOn }
    ... on LedgerError { code message }
  }
}
"""
"""What the development page opens with: README's first example (every app has CREDIT_ADD)."""
PRODUCTION_HINT: Final = (
    '# Add your token in Headers (below) as {"Authorization": "Bearer <token>"}, '
    "then re-fetch the schema (the arrow circle at the bottom left, or Shift-Ctrl-R)."
)
"""The production page's first line: it holds no token."""
_PRODUCTION_QUERY: Final = f"{PRODUCTION_HINT}\n{{\n  operations {{ operation amount }}\n}}\n"
_DEVELOPMENT_INTRO: Final = (
    "# {app} in development: Headers (below) holds a service token, Docs (left) the schema.\n"
    "# Run it with \u25b6 (Ctrl-Enter): it gives alice 10 credits, once (its nonce).\n"
)
_DOCS_PLUGIN: Final = "Documentation Explorer"  # GraphiQL 3's title of its Docs panel
_SETUP: Final = "LEDGER_GRAPHIQL"  # the page's global holding what the page opens with
# Where the setup goes into Strawberry's page: each must be there exactly once.
_HOOKS: Final = (
    ("</head>", "<script>const {setup} = {value};</script>\n  </head>"),
    ("parameters.q || EXAMPLE_QUERY", "parameters.q || {setup}.query"),
    (
        "React.useState(parameters.headers)",
        "React.useState(parameters.headers || {setup}.headers || undefined)",
    ),
    (
        "shouldPersistHeaders: true,",
        "shouldPersistHeaders: true,\n          visiblePlugin: {setup}.docs,",
    ),
)


@dataclass(frozen=True)
class PageSetup:
    """What GraphiQL opens with: the query editor's text, the Headers editor's (None: what
    the browser kept from last time), and whether the Docs panel is open."""

    query: str
    headers: dict[str, str] | None = None
    docs_open: bool = False

    @classmethod
    def development(cls, app: str, token: str | None) -> "PageSetup":
        """Ready to run: the token (None: authentication is off) and the first example."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return cls(_DEVELOPMENT_INTRO.format(app=app) + FIRST_EXAMPLE, headers, docs_open=True)

    def script(self) -> str:
        """The setup as a JavaScript value, safe inside a <script> element."""
        value = {
            "query": self.query,
            "headers": json.dumps(self.headers, indent=2) if self.headers is not None else None,
            "docs": _DOCS_PLUGIN if self.docs_open else None,
        }
        return json.dumps(value).replace("<", "\\u003c")


PRODUCTION: Final = PageSetup(_PRODUCTION_QUERY)


def _is_loopback(client: str | None) -> bool:
    try:
        return client is not None and ipaddress.ip_address(client).is_loopback
    except ValueError:  # not an address (a test client's name, a Unix socket's path)
        return False


def with_setup(page: str, setup: PageSetup) -> str:
    """Strawberry's GraphiQL page opening with `setup`.

    Raises:
        ValueError: the page lacks a place the setup goes (a Strawberry release that
            changed its page).
    """
    for hook, replacement in _HOOKS:
        if page.count(hook) != 1:
            raise ValueError(f"Strawberry's GraphiQL page no longer has {hook!r} once")
        page = page.replace(hook, replacement.format(setup=_SETUP, value=setup.script()))
    return page


class GraphiQLAssets:
    """The GraphiQL page for a LedgerGraphQL view, and the app serving the files it loads.

    Args:
        directory: Where the files are (`make assets` fills DEFAULT_DIRECTORY).
        stock_page: The page to serve; Strawberry's GraphiQL page when omitted.
    """

    def __init__(self, directory: Path = DEFAULT_DIRECTORY, stock_page: str | None = None) -> None:
        self.directory = directory
        self.stock_page = stock_page if stock_page is not None else get_graphql_ide_html("graphiql")
        # check_dir=False: the app starts without the files and serves the CDN page instead.
        self.files = StaticFiles(directory=directory, check_dir=False)
        self.setup = PRODUCTION
        self._local: str | None = None
        self._checked = False

    def develop(self, app: str, token: str | None) -> None:
        """Opens the page ready for development on `app`, with `token` in its headers."""
        self.setup = PageSetup.development(app, token)

    def page(self, root_path: str = "", *, client: str | None = "127.0.0.1") -> str:
        """The page with its files served by the app below `root_path` (or from the CDN when
        a file is missing or is not the one the page names), opening with the setup; the
        development setup only for a `client` on this machine (a loopback address), so
        that a development server reachable from elsewhere hands nobody else its token."""
        if not self._checked:
            self._local = self._localized()
            self._checked = True
        page = self.stock_page if self._local is None else self._local
        setup = self.setup if _is_loopback(client) else PRODUCTION
        try:
            page = with_setup(page, setup)
        except ValueError as unsupported:
            self._warn_once("setup", f"GraphiQL opens without its setup: {unsupported}")
        return page.replace(_PREFIX, root_path + STATIC_PATH)

    def _localized(self) -> str | None:
        try:
            files = cdn_files(self.stock_page)
        except ValueError as unsupported:
            self._fall_back(str(unsupported))
            return None
        missing = [file.local_path for file in files if not self._present(file)]
        if missing:
            self._fall_back(f"{', '.join(missing)} missing or out of date in {self.directory}")
            return None
        page = self.stock_page
        for file in files:
            page = page.replace(file.url, f"{_PREFIX}/{file.local_path}")
        return page

    def _fall_back(self, problem: str) -> None:
        self._warn_once(
            "files",
            f"GraphiQL loads its files from {CDN} ({problem}); run `make assets` (it needs "
            "npm) to serve them from the app",
        )

    def _warn_once(self, kind: str, message: str) -> None:
        if (self.directory, kind) not in _warned:
            _warned.add((self.directory, kind))
            logger.warning("%s", message)

    def _present(self, file: CdnFile) -> bool:
        try:
            return file.matches((self.directory / file.local_path).read_bytes())
        except OSError:
            return False
