/** What a response needs for clientGone: whether it ended, whether its connection closed. */
export interface WatchedResponse {
  writableFinished: boolean;
  destroyed: boolean;
  on(event: "close", listener: () => void): unknown;
}

/**
 * A signal aborted when `res`'s client closes the connection before the answer ended (at once
 * if it already has): what cancels a call whose caller went away (MCP's direct path, GraphQL).
 * A response that ended normally closes after it finished, and aborts nothing.
 */
export function clientGone(res: WatchedResponse): AbortSignal {
  const abort = new AbortController();
  if (res.destroyed && !res.writableFinished) abort.abort();
  else
    res.on("close", () => {
      if (!res.writableFinished) abort.abort();
    });
  return abort.signal;
}
