import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { PostgreSQL, sql } from "@codemirror/lang-sql";
import { defaultHighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap, lineNumbers } from "@codemirror/view";

/** The page's CSP nonce (served in a meta tag): CodeMirror's <style> elements carry it. */
const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? "";

/**
 * A minimal CodeMirror 6: PostgreSQL highlighting, undo history, line numbers; Ctrl/Cmd-Enter
 * runs. Tab is left to move focus (keyboard users must be able to leave the editor).
 */
export function createEditor(parent: HTMLElement, doc: string, opts: { label: string; onRun: () => void; onChange: (text: string) => void }): EditorView {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        EditorView.cspNonce.of(nonce),
        lineNumbers(),
        history(),
        sql({ dialect: PostgreSQL }),
        syntaxHighlighting(defaultHighlightStyle),
        keymap.of([{ key: "Mod-Enter", run: () => (opts.onRun(), true) }, ...defaultKeymap, ...historyKeymap]),
        EditorView.contentAttributes.of({ "aria-label": opts.label, "aria-multiline": "true" }),
        EditorView.updateListener.of((u) => u.docChanged && opts.onChange(u.state.doc.toString())),
      ],
    }),
  });
}
