"""GraphiQL that works offline. Strawberry's GraphiQL page loads React, GraphiQL, its explorer
plugin and js-cookie from a CDN, so it is blank without internet. `make assets` installs the
npm packages pinned in assets/ and copies the files that page names (`main`, as `install
assets/node_modules`) into graphql_ledger/static/graphiql/, laid out as the CDN lays them out
(`graphiql@3.8.3/graphiql.min.js`). The app serves that directory at /graphql/static/graphiql/
and answers a browser's GET /graphql with the stock page, its CDN URLs pointed there. The page
keeps its `integrity` hashes, which the local files are checked against, so the browser
verifies exactly what it would have verified from the CDN. When a file is missing or differs,
the page is the stock CDN one and one warning says to run `make assets`."""

import argparse
import base64
import hashlib
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

__all__ = [
    "DEFAULT_DIRECTORY",
    "STATIC_PATH",
    "CdnFile",
    "GraphiQLAssets",
    "cdn_files",
    "install",
]

logger = logging.getLogger(__name__)

CDN: Final = "https://unpkg.com/"
STATIC_PATH: Final = "/graphql/static/graphiql"
"""Where the app serves the files (below the ASGI root path)."""
DEFAULT_DIRECTORY: Final = Path(__file__).resolve().parent / "static" / "graphiql"
"""Where `make assets` puts the files."""
_PREFIX: Final = "\x00graphiql-static\x00"  # stands for root_path + STATIC_PATH until served

# Directories already warned about: one warning per process, however many apps and requests.
_warned: set[Path] = set()


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
        self._local: str | None = None
        self._checked = False

    def page(self, root_path: str = "") -> str:
        """The page with its files served by the app below `root_path`, or the stock page
        when a file is missing or is not the one the page names."""
        if not self._checked:
            self._local = self._localized()
            self._checked = True
        if self._local is None:
            return self.stock_page
        return self._local.replace(_PREFIX, root_path + STATIC_PATH)

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
        if self.directory not in _warned:
            _warned.add(self.directory)
            logger.warning(
                "GraphiQL loads its files from the internet (%s); run `make assets` to serve "
                "them from the app",
                problem,
            )

    def _present(self, file: CdnFile) -> bool:
        try:
            return file.matches((self.directory / file.local_path).read_bytes())
        except OSError:
            return False


def install(node_modules: Path, directory: Path = DEFAULT_DIRECTORY) -> list[CdnFile]:
    """Copies the files Strawberry's GraphiQL page loads from installed npm packages to
    `directory` (replacing it), with their source maps and licenses; checks each package's
    version and each file's integrity hash against the page.

    Raises:
        RuntimeError: a package is missing, at another version, or a file differs.
    """
    try:
        files = cdn_files(get_graphql_ide_html("graphiql"))
    except ValueError as unsupported:
        raise RuntimeError(str(unsupported)) from None
    staging = directory.with_name(directory.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for file in files:
            _copy(node_modules, file, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return files


def _copy(node_modules: Path, file: CdnFile, staging: Path) -> None:
    package = node_modules / file.package
    installed = _version(package)
    if installed != file.version:
        found = f"{file.package}@{installed}" if installed else f"no {file.package}"
        raise RuntimeError(
            f"Strawberry's GraphiQL page loads {file.package}@{file.version}, but "
            f"{node_modules} has {found}: pin {file.version} in "
            "assets/package.json and run `npm install` in assets/ to update the lock file"
        )
    source = package / file.path
    if not file.matches(source.read_bytes()):
        raise RuntimeError(f"{source} is not the file the page names ({file.integrity})")
    extras = [source.with_name(source.name + ".map"), *package.glob("LICENSE*")]
    for path in [source, *(extra for extra in extras if extra.is_file())]:
        target = staging / f"{file.package}@{file.version}" / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _version(package: Path) -> str | None:
    try:
        manifest = json.loads((package / "package.json").read_text(encoding="utf-8"))
    except OSError:
        return None
    version = manifest.get("version")
    return version if isinstance(version, str) else None


def main(argv: Sequence[str] | None = None) -> int:
    """`install NODE_MODULES [--to DIRECTORY]`, for `make assets`; the exit status."""
    parser = argparse.ArgumentParser(
        prog="graphql_ledger.graphiql",
        description="Copies GraphiQL's files from installed npm packages to where the app "
        "serves them.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("install", help=install.__doc__)
    command.add_argument("node_modules", type=Path)
    command.add_argument("--to", type=Path, default=DEFAULT_DIRECTORY, dest="directory")
    args = parser.parse_args(argv)
    try:
        files = install(args.node_modules, args.directory)
    except (RuntimeError, OSError) as failure:
        print(f"GraphiQL assets not installed: {failure}", file=sys.stderr)
        return 1
    packages = sorted({f"{file.package}@{file.version}" for file in files})
    print(f"GraphiQL assets in {args.directory}: {', '.join(packages)}")
    return 0
