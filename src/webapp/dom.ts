/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The few DOM helpers the views share. Received text only ever goes into textContent (never
 * innerHTML), so nothing a peer sends can become markup or script.
 */

/** The element with this id; a missing one is a bug in index.html, so it throws. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no element #${id}`);
  return found as T;
}

type Child = Node | string | null | undefined | false;

/** A new element with attributes (a `class` string included) and children (strings as text). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

/** A button that runs `action` on click. */
export function button(label: string, action: () => void, attrs: Record<string, string> = {}) {
  const b = el("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", action);
  return b;
}

/** "1.5 MiB": a size for people. */
export function formatSize(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/** "13:05" for today, "2026-12-05 13:05" before. */
export function formatTime(iso: string, now = new Date()): string {
  const t = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  const hm = `${pad(t.getHours())}:${pad(t.getMinutes())}`;
  if (t.toDateString() === now.toDateString()) return hm;
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${hm}`;
}
