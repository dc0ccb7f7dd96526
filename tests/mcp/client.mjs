// `deploy mcp` driven by the official MCP TypeScript SDK (a client this
// project did not write), over stdio or, with MCP_URL, Streamable HTTP.
// TAP on stdout.
//   DEPLOY=build/deploy AGENTD_SOCKET=... node tests/mcp/client.mjs
//   MCP_URL=http://127.0.0.1:PORT/mcp node tests/mcp/client.mjs
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import Ajv from "ajv";

let n = 0;
let failed = false;
const ok = (cond, name, detail) => {
  n++;
  if (cond) console.log(`ok ${n} - ${name}`);
  else {
    failed = true;
    console.log(`not ok ${n} - ${name}`);
    if (detail !== undefined) console.log(`#   ${JSON.stringify(detail).slice(0, 600)}`);
  }
};

const transport = process.env.MCP_URL
  ? new StreamableHTTPClientTransport(new URL(process.env.MCP_URL))
  : new StdioClientTransport({ command: process.env.DEPLOY, args: ["--socket", process.env.AGENTD_SOCKET, "mcp"],
      stderr: "inherit" });
const client = new Client({ name: "agentd-tests", version: "1.0.0" });
await client.connect(transport);
ok(client.getServerVersion()?.name === "agentd-deploy", "initialize: server info", client.getServerVersion());

const { tools } = await client.listTools();
const names = tools.map((t) => t.name).sort();
ok(JSON.stringify(names) === JSON.stringify(["delete_environment", "deploy", "get_logs", "get_status",
  "get_usage", "list_deployments", "list_environments", "remove_service"]), "tools/list: the eight tools", names);
ok(tools.every((t) => t.description.length > 40 && t.inputSchema.type === "object" && t.outputSchema?.type === "object"),
  "every tool has a description, an inputSchema and an outputSchema");

// Our own check of every result against its tool's outputSchema (the SDK
// checks too, and throws when it does not match).
const ajv = new Ajv({ strict: false });
const validators = Object.fromEntries(tools.map((t) => [t.name, ajv.compile(t.outputSchema)]));
const call = async (name, args, opts) => {
  const r = await client.callTool({ name, arguments: args }, undefined, opts);
  if (!r.isError && !validators[name](r.structuredContent))
    ok(false, `${name}: structuredContent matches outputSchema`, validators[name].errors);
  return r;
};

// Each transport deploys into its own environment, so runs do not meet.
const scope = { project: "mcp", environment: process.env.MCP_URL ? "http" : "production" };
const progress = [];
const dep = await call("deploy", { image: "busybox", ...scope, service: "web", port: 8080,
  command: ["httpd", "-f", "-p", "8080", "-h", "/www"] }, { onprogress: (p) => progress.push(p) });
const s = dep.structuredContent;
ok(!dep.isError && s?.status === "running" && s.url.startsWith("http://127.0.0.1:"), "deploy: running, with a URL", dep);
ok(typeof s?.timings_ms?.total === "number" && s.timings_ms.total > 0, "deploy: phase timings in ms", s?.timings_ms);
ok(dep.content?.[0]?.type === "text" && dep.content[0].text.includes(s?.url ?? "-"), "deploy: a text rendering", dep.content);
ok(progress.length >= 1, "deploy: progress notifications received", progress);
const page = await (await fetch(`${s.url}/`)).text();
ok(page.includes("hello from agentd"), "the deployed service answers at its URL", page);

const st = await call("get_status", { ...scope, service: "web" });
ok(st.structuredContent?.state === "running" && st.structuredContent.pid > 0, "get_status: running with a pid", st.structuredContent);
const list = await call("list_deployments", { project: "mcp" });
ok(list.structuredContent?.deployments?.some((d) => d.id === `mcp.${scope.environment}.web`), "list_deployments: the service", list.structuredContent);
const logs = await call("get_logs", { ...scope, service: "web", lines: 5 });
ok(logs.structuredContent?.lines?.some((l) => l.stream === "agentd" && l.text.includes("healthy")), "get_logs: lines marked by stream", logs.structuredContent);
const envs = await call("list_environments", { project: "mcp" });
ok(envs.structuredContent?.environments?.some((e) => e.environment === scope.environment &&
  e.production === (scope.environment === "production")), "list_environments", envs.structuredContent);
const usage = await call("get_usage", { project: "mcp" });
ok(usage.structuredContent?.available === true && Array.isArray(usage.structuredContent.usage) && !usage.isError,
  "get_usage: figures from the node's journal", usage.structuredContent);

// Failures the agent can fix come back as isError with what to do.
const bad = await call("deploy", { image: "nosuch-image", ...scope, service: "bad" });
ok(bad.isError === true && /not in the store/.test(bad.content[0].text), "deploy of a missing image: isError, actionable", bad.content);
const none = await call("get_status", { ...scope, service: "ghost" });
ok(none.isError === true && /list_deployments/.test(none.content[0].text), "get_status of nothing: isError pointing at list_deployments", none.content);

// Destructive tools: a dry run without confirm.
const dry = await call("remove_service", { ...scope, service: "web" });
ok(dry.structuredContent?.confirmed === false && dry.structuredContent.removed.length === 0 &&
  dry.structuredContent.would_remove[0] === `mcp.${scope.environment}.web`, "remove_service without confirm: nothing removed", dry.structuredContent);
const still = await call("get_status", { ...scope, service: "web" });
ok(still.structuredContent?.state === "running", "...and the service still runs");

// Cancellation: a deploy whose new version never listens waits for its
// health check; the client cancels it; the server goes on serving.
const ac = new AbortController();
const slow = client.callTool({ name: "deploy", arguments: { image: "busybox", ...scope, service: "slow", port: 8080,
  command: ["sleep", "600"] } }, undefined, { signal: ac.signal });
setTimeout(() => ac.abort("changed my mind"), 300);
let aborted = false;
try { await slow; } catch (e) { aborted = true; }
ok(aborted, "a deploy cancelled by the client ends its request");
const t0 = Date.now();
const after = await call("list_deployments", {});
ok(!after.isError && Date.now() - t0 < 2000, "the server answers right after a cancellation", Date.now() - t0);

const real = await call("remove_service", { ...scope, service: "web", confirm: true });
ok(real.structuredContent?.removed?.[0] === `mcp.${scope.environment}.web`, "remove_service with confirm: removed", real.structuredContent);
const delDry = await call("delete_environment", { ...scope });
const del = await call("delete_environment", { ...scope, confirm: true });
ok(del.structuredContent?.confirmed === true, "delete_environment with confirm", { delDry: delDry.structuredContent, del: del.structuredContent });

await client.close();
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
