// Small DOM helpers: elements built with text nodes only (never HTML strings, so nothing the
// server sends can become markup), and the page's one status line and error box.

type Child = Node | string | number | null | undefined | false | Child[];
type Attributes = Record<string, string | number | boolean | EventListener | undefined>;

/** Creates an element; `on…` attributes become listeners, booleans toggle. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's content. */
export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** A date and time in the reader's locale, from Unix seconds. */
export function when(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** The message of anything thrown, for people (to go inside a sentence). */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The message of anything thrown, as a sentence of its own. */
export function sentence(error: unknown): string {
  const text = message(error);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A labelled form field. */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", { id: hintId }, hint) : null);
}

/**
 * Runs an action from a button: disables it, says what is happening in the status line (only
 * while something is, with words for it), and shows a failure in the page's alert box.
 */
export async function act(button: HTMLButtonElement | null, doing: string, action: () => Promise<void>): Promise<void> {
  const status = document.getElementById("status");
  const alert = document.getElementById("alert");
  if (alert) fill(alert);
  if (button) button.disabled = true;
  if (status) fill(status, doing);
  try {
    await action();
    if (status && status.textContent === doing) fill(status);
  } catch (error) {
    if (status) fill(status);
    if (alert) fill(alert, sentence(error));
  } finally {
    if (button) button.disabled = false;
  }
}

/** Says something in the status line (announced to screen readers). */
export function say(text: string): void {
  const status = document.getElementById("status");
  if (status) fill(status, text);
}

/** A genesis digest (hex) in groups of eight, the way it is read out. */
export function grouped(genesis: string): string {
  return genesis.match(/.{8}/g)?.join(" ") ?? genesis;
}
