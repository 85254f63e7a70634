// A minimal MCP Apps host page for the test, bundled by esbuild and run in Chromium: it puts the
// app's HTML (read from Sextant with resources/read) in a sandboxed iframe and connects the
// ext-apps host bridge to it. Tool calls the app makes through the bridge go to the test's real
// MCP client (window.sextantCallTool, exposed by Playwright): the app has no network of its own.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

declare global {
  interface Window {
    sextantCallTool(name: string, args: unknown): Promise<unknown>;
    showApp(html: string, input: Record<string, unknown>, result: unknown): Promise<void>;
    appCalls: string[];
  }
}

window.appCalls = [];
window.showApp = async (html, input, result) => {
  const frame = document.createElement("iframe");
  frame.title = "Sextant app";
  frame.setAttribute("sandbox", "allow-scripts");
  frame.style.width = "900px";
  frame.style.height = "700px";
  const bridge = new AppBridge(null, { name: "test host", version: "1.0.0" }, { serverTools: {} });
  bridge.oncalltool = async (params) => {
    window.appCalls.push(params.name);
    return (await window.sextantCallTool(params.name, params.arguments ?? {})) as never;
  };
  const initialized = new Promise<void>((resolve) => (bridge.oninitialized = () => resolve()));
  document.body.appendChild(frame);
  await bridge.connect(new PostMessageTransport(frame.contentWindow!, frame.contentWindow!));
  frame.srcdoc = html;
  await initialized;
  await bridge.sendToolInput({ arguments: input });
  await bridge.sendToolResult(result as never);
};
