// Ask a decide server which content a visitor sees, from Node.js.
//
//   npm ci
//   node decide.js [HOST:PORT]        (default 127.0.0.1:50051; `make serve` starts one)
//
// Set DECIDE_API_KEY when the server requires API keys.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const REPO_ROOT = path.resolve(__dirname, "..", "..");

// Load the same .proto the server is built from. proto-loader bundles the google
// well-known types (struct.proto, timestamp.proto), so only the repository root is
// needed to resolve "protos/decisioning.proto".
const definition = protoLoader.loadSync("protos/decisioning.proto", {
  includeDirs: [REPO_ROOT],
  keepCase: true, // field names as in the .proto: content_json, not contentJson
  longs: String, // int64 ruleset_version arrives as a string, without precision loss
  enums: String, // reason: "REASON_CAMPAIGN" rather than 1
  defaults: true, // unset fields take their proto3 defaults
  oneofs: true,
});
const decisioning = grpc.loadPackageDefinition(definition).decisioning.v1;

// google.protobuf.Struct is a message, not a plain object: convert context values.
function toValue(value) {
  if (value === null || value === undefined) return { null_value: "NULL_VALUE" };
  if (typeof value === "number") return { number_value: value };
  if (typeof value === "string") return { string_value: value };
  if (typeof value === "boolean") return { bool_value: value };
  if (Array.isArray(value)) return { list_value: { values: value.map(toValue) } };
  return { struct_value: toStruct(value) };
}

function toStruct(object) {
  const fields = {};
  for (const [key, value] of Object.entries(object)) fields[key] = toValue(value);
  return { fields };
}

function main() {
  const target = process.argv[2] || "127.0.0.1:50051";
  const client = new decisioning.DecisionService(target, grpc.credentials.createInsecure());

  const metadata = new grpc.Metadata();
  if (process.env.DECIDE_API_KEY) metadata.set("x-api-key", process.env.DECIDE_API_KEY);

  const request = {
    visitor_id: "visitor-42",
    placements: ["home_hero", "product_recommendations"],
    context: toStruct({ device: "mobile", country: "FR", page: { type: "home" } }),
  };
  const deadline = new Date(Date.now() + 2000);

  client.Decide(request, metadata, { deadline }, (error, response) => {
    client.close();
    if (error) {
      console.error(`Decide failed: ${grpc.status[error.code]}: ${error.details}`);
      process.exitCode = 1;
      return;
    }
    console.log(`ruleset version ${response.ruleset_version} (${response.ruleset_hash})`);
    for (const decision of response.decisions) {
      const content = JSON.parse(decision.content_json || "null");
      console.log(
        `${decision.placement}: ${decision.reason}` +
          (decision.campaign_id ? ` campaign=${decision.campaign_id}` : "") +
          (decision.variant_id ? ` variant=${decision.variant_id}` : "") +
          (decision.control ? " (control)" : "")
      );
      console.log(`  content: ${JSON.stringify(content)}`);
    }
  });
}

main();
