// bench/mcp's client: N tools/call deploy (a new /bin/sleep service each,
// from the cached busybox image) over one transport, timed from the
// request to its result. Prints "p50_ms p99_ms".
//   [MCP_URL=...] DEPLOY=... AGENTD_SOCKET=... N=100 ENV=... node bench.mjs
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const n = Number(process.env.N || 100);
const env = process.env.ENV;
const transport = process.env.MCP_URL
  ? new StreamableHTTPClientTransport(new URL(process.env.MCP_URL))
  : new StdioClientTransport({ command: process.env.DEPLOY, args: ["--socket", process.env.AGENTD_SOCKET, "mcp"] });
const client = new Client({ name: "agentd-bench", version: "1.0.0" });
await client.connect(transport);
await client.listTools();
const ms = [];
for (let i = 0; i < n; i++) {
  const t0 = process.hrtime.bigint();
  const r = await client.callTool({ name: "deploy", arguments: { image: "busybox", project: "bench",
    environment: env, service: `s${i}`, command: ["/bin/sleep", "3600"] } });
  ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (r.isError) { console.error(r.content[0].text); process.exit(1); }
}
await client.callTool({ name: "delete_environment", arguments: { project: "bench", environment: env, confirm: true } });
await client.close();
ms.sort((a, b) => a - b);
const pct = (p) => ms[Math.min(ms.length - 1, Math.max(0, Math.ceil(ms.length * p / 100) - 1))];
console.log(`${pct(50).toFixed(2)} ${pct(99).toFixed(2)}`);
