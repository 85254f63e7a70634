import { App, PostMessageTransport } from "@modelcontextprotocol/ext-apps";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Lineage, type LineageModel } from "../src/components/lineage.tsx";
import "./app.css";

/** MCP App for `get_model_details`: the lineage graph; a node opens that model through the host (get_model_details). */
const app = new App({ name: "Sextant dbt lineage", version: "0.1.0" });
let show: (m: { model?: LineageModel; error?: string }) => void = () => {};

function View() {
  const [state, set] = useState<{ model?: LineageModel; error?: string }>({});
  useEffect(() => void (show = set), []);
  const open = async (id: string) => {
    const res = await app.callServerTool({ name: "get_model_details", arguments: { model: id } });
    set(res.isError ? { error: res.content.map((c) => ("text" in c ? c.text : "")).join("\n") } : { model: res.structuredContent as unknown as LineageModel });
  };
  if (state.error) return <p class="error" role="alert">{state.error}</p>;
  if (!state.model) return <p role="status">Waiting for the model…</p>;
  return (
    <main>
      <h1>{state.model.name}</h1>
      <Lineage model={state.model} onOpen={open} />
    </main>
  );
}

app.ontoolresult = (p) => show(p.isError ? { error: "the model could not be read" } : { model: p.structuredContent as unknown as LineageModel });
render(<View />, document.getElementById("app")!);
void app.connect(new PostMessageTransport(window.parent, window.parent));
