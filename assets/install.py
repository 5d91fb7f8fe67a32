"""`make assets`'s installer: copies the files Strawberry's GraphiQL page loads from the npm
packages `npm ci` installed here (assets/node_modules) to where the app serves them
(graphql_ledger/static/graphiql/), checking each against the page. A build step, kept out of
the served package: `python assets/install.py assets/node_modules [--to DIRECTORY]`."""

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

from graphql_ledger.graphiql import DEFAULT_DIRECTORY, CdnFile, cdn_files

__all__ = ["install", "main"]


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
    """`NODE_MODULES [--to DIRECTORY]`, for `make assets`; the exit status."""
    parser = argparse.ArgumentParser(
        prog="assets/install.py",
        description="Copies GraphiQL's files from installed npm packages to where the app "
        "serves them.",
    )
    parser.add_argument("node_modules", type=Path, help="where `npm ci` installed them")
    parser.add_argument("--to", type=Path, default=DEFAULT_DIRECTORY, dest="directory")
    args = parser.parse_args(argv)
    try:
        files = install(args.node_modules, args.directory)
    except (RuntimeError, OSError) as failure:
        print(f"GraphiQL assets not installed: {failure}", file=sys.stderr)
        return 1
    packages = sorted({f"{file.package}@{file.version}" for file in files})
    print(f"GraphiQL assets in {args.directory}: {', '.join(packages)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
