import { useEffect, useState } from "preact/hooks";

/** Loads `fn` when `deps` change; `state.error` is shown by <Problem>. */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[]): { data?: T; error?: string; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    fn().then((data) => live && setState({ data, loading: false }), (e: Error) => live && setState({ error: e.message, loading: false }));
    return () => void (live = false);
  }, [...deps, n]);
  return { ...state, reload: () => setN((v) => v + 1) };
}

export function Problem(props: { error?: string }) {
  return props.error ? <p class="error" role="alert">{props.error}</p> : null;
}

export function Loading(props: { loading: boolean; what: string }) {
  return props.loading ? <p class="muted" role="status">Loading {props.what}…</p> : null;
}
