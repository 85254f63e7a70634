import { useEffect, useState } from "preact/hooks";

/** The route is the URL's hash (#/table/public/orders): one page, no server routes, back button works. */
export function useRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, "") || "explore").split("/").map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

export const href = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join("/")}`;
export const go = (...parts: string[]) => void (location.hash = href(...parts));
