// @graphql-codegen/cli config for tests/test_clients.py: a TypeScript client of healthai
// from the committed SDL and the operations the Python client is generated from too.
// The test names the output file in CODEGEN_OUTPUT (a temporary directory of its own).
const path = require("node:path");

const root = path.resolve(__dirname, "..", "..", "..");
const output = process.env.CODEGEN_OUTPUT;
if (!output) {
  throw new Error("CODEGEN_OUTPUT must name the file to generate");
}

module.exports = {
  overwrite: true,
  schema: path.join(root, "schema", "healthai.graphql"),
  documents: path.join(root, "tests", "clients", "healthai_operations.graphql"),
  generates: {
    [output]: {
      plugins: ["typescript", "typescript-operations"],
      config: {
        strictScalars: true,
        scalars: { DateTime: "string", JSON: "Record<string, string>" },
      },
    },
  },
};
