"""The apps this installation knows: the `graphql_ledger.apps` entry points of the installed
distributions, each naming an app's operation enum (pyproject.toml lists ours)."""

from importlib.metadata import entry_points

from graphql_ledger.operations import LedgerOperation

__all__ = ["UnknownApp", "registered_apps", "select_apps"]

ENTRY_POINT_GROUP = "graphql_ledger.apps"


class UnknownApp(Exception):
    """An app name that no installed distribution registers."""


def registered_apps() -> dict[str, type[LedgerOperation]]:
    """Every registered app's operation enum by app name, in name order."""
    apps = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        operations = point.load()
        if not (isinstance(operations, type) and issubclass(operations, LedgerOperation)):
            raise TypeError(f"entry point {point.name} = {point.value} is not a LedgerOperation")
        apps[point.name] = operations
    return apps


def select_apps(names: list[str]) -> dict[str, type[LedgerOperation]]:
    """The apps named, in the order given, or every registered app when none is named."""
    apps = registered_apps()
    unknown = [name for name in names if name not in apps]
    if unknown:
        raise UnknownApp(
            f"unknown app {', '.join(unknown)}; the registered apps are {', '.join(apps)}"
        )
    return {name: apps[name] for name in names} if names else apps
