// The benchmark's peer: PostGraphile 4 serving the ledger's own tables (schema `public`)
// over POST /graphql, in a Node cluster of WORKERS workers sharing PORT.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench PORT=5000 WORKERS=2 node server.js
//
// Environment: DATABASE_URL (required), PORT (default 5000), WORKERS (default 2), PG_SCHEMA
// (default public: the ledger's tables; `minimal`: the independent reference's, bench/minimal.sql),
// PG_POOL_SIZE (connections per worker, default 10: node-postgres's default), NODE_ENV
// (default production). PostGraphile's own defaults already cache parsed and validated
// documents (queryCacheMaxSize) and use prepared statements.
// Options follow PostGraphile 4's "For Production" set (usage-cli docs), minus what the
// benchmark has no use for (subscriptions, the simplify-inflector plugin), plus
// disableDefaultMutations: the only write is the ledger's create_entry() function, which
// PostGraphile exposes as the `createEntry` mutation because it is VOLATILE.
"use strict";

// Production mode before anything loads graphql-js: outside it, graphql-js adds checks to
// every instanceof test it makes (its "Going to production" docs ask for this).
process.env.NODE_ENV = process.env.NODE_ENV || "production";

const cluster = require("node:cluster");
const http = require("node:http");
const { postgraphile } = require("postgraphile");

const port = Number(process.env.PORT || 5000);
const workers = Number(process.env.WORKERS || 2);
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error("DATABASE_URL is required");
  process.exit(2);
}

if (cluster.isPrimary) {
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.kill();
  };
  // A worker that dies (PostGraphile exits with 34 when introspection fails) stops the
  // whole server: the readiness check then fails rather than the run measuring fewer workers.
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    console.error(`worker ${worker.process.pid} exited (${signal || code}); stopping`);
    process.exitCode = 1;
    stop();
  });
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  for (let i = 0; i < workers; i++) cluster.fork();
  console.log(`postgraphile: ${workers} workers on port ${port}`);
} else {
  const middleware = postgraphile(
    { connectionString: databaseUrl, max: Number(process.env.PG_POOL_SIZE || 10) },
    process.env.PG_SCHEMA || "public",
    {
      watchPg: false,
      graphiql: false,
      retryOnInitFail: false, // fail fast (exit 34): a benchmark should not wait on a bad database
      disableQueryLog: true, // the docs: the default query log has performance issues
      ignoreRBAC: false, // expose only what the connecting role may use (recommended)
      dynamicJson: true,
      setofFunctionsContainNulls: false,
      legacyRelations: "omit",
      disableDefaultMutations: true, // no generic CRUD: the only write is create_entry()
      enableQueryBatching: true,
      extendedErrors: ["errcode"],
      // No JWT options, pgSettings or pgDefaultRole: every request runs as the connecting
      // role, as the ledger's benchmark runs everything with one service token.
    }
  );
  http.createServer(middleware).listen(port);
}
