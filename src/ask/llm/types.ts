/** A tool call the model asked for. `arguments` is what it sent, parsed; `malformed` says why it could not be. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
  malformed?: string;
}

/** One tool call's result, as text for the model (fenced where it carries others' text). */
export interface ToolResult {
  id: string;
  name: string;
  text: string;
  isError: boolean;
}

/** The conversation in a provider-neutral form; each client turns it into its wire format. */
export type ChatMessage =
  | { role: "user"; text: string }
  | { role: "assistant"; text: string; toolCalls: ToolCall[] }
  | { role: "tool"; results: ToolResult[] };

export interface ToolDefinition {
  name: string;
  description: string;
  /** JSON Schema of the arguments (an object schema). */
  parameters: Record<string, unknown>;
}

export interface Completion {
  text: string;
  toolCalls: ToolCall[];
  usage: { inputTokens: number; outputTokens: number };
}

export interface CompletionRequest {
  system: string;
  messages: ChatMessage[];
  tools: ToolDefinition[];
  signal: AbortSignal;
}

/** A chat model with tool calling (Anthropic Messages or OpenAI-compatible chat completions). */
export interface Llm {
  readonly provider: string;
  readonly model: string;
  complete(request: CompletionRequest): Promise<Completion>;
}
