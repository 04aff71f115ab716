/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The web client's entry point: resume the saved session (a reload needs no password), or show
 * the login form; then run the chat over a Link, which reconnects with the resume token after a
 * drop or a server restart. The resume token is saved again after every (re)login, because the
 * server replaces it at each RESUME.
 */

import type { ConnectOptions } from "../client/core.ts";
import { connectFirst, type FirstConnection } from "../client/endpoints.ts";
import { HostKeyChangedError } from "../client/pins.ts";
import { BACKOFF_MS, Link } from "../client/link.ts";
import { ErrorCode, ParleyError } from "../protocol/errors.ts";
import { MsgType } from "../protocol/messages.ts";
import { WebChat } from "./chat.ts";
import { ConnectionState } from "./connection_state.ts";
import { askTrustKey, KeyNotTrustedError } from "./dialogs.ts";
import { byId } from "./dom.ts";
import { HistoryStore } from "./history_store.ts";
import { LoginView } from "./login_view.ts";
import { Notifications } from "./notifications.ts";
import { alternateEndpoints, browserPlatform, dial, socketUrl } from "./platform.ts";
import { PinnedKeys, SettingsStore } from "./settings_store.ts";

/**
 * One tab of an origin holds the connection: a second tab logging in as the same device would
 * kick the first. The holder keeps a Web Lock; another tab finds it taken and offers "Use here",
 * which reloads and steals the lock; the former holder is told by its lock request failing with
 * AbortError, closes its connection and shows the same offer.
 */
const TAB_LOCK = "parley-connection";
/** Set (in this tab's sessionStorage) by "Use here" and "Reconnect here" just before reloading. */
const TAKE_OVER = "parley-take-over";

/** Whether this tab now holds the connection; `lost` runs if another tab takes it later. */
function holdTab(steal: boolean, lost: () => void): Promise<boolean> {
  if (!navigator.locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.locks.request(TAB_LOCK, steal ? { steal: true } : { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      // Held until the page goes, or until another tab steals it.
      return lock ? new Promise<void>(() => {}) : undefined;
    }).catch((e) => {
      if ((e as Error).name === "AbortError") lost();
    });
  });
}

/** Reloads this tab to hold the connection (taking it from another tab if need be). */
function takeOver(): void {
  sessionStorage.setItem(TAKE_OVER, "1");
  location.reload();
}

/** Shows that this tab is not connected, why, and the button that connects it again. */
function away(state: ConnectionState, text: string, action: string, run: () => void): void {
  byId("away-text").textContent = text;
  const b = byId<HTMLButtonElement>("away-button");
  b.textContent = action;
  b.onclick = run;
  byId("away").hidden = false;
  // Nothing typed here could be sent: the box and its buttons say so by being disabled.
  for (const e of byId<HTMLFormElement>("composer").elements) {
    (e as HTMLButtonElement).disabled = true;
  }
  state.set("ended", text);
}

function elsewhere(state: ConnectionState): void {
  byId("login-view").hidden = true;
  byId("chat-view").hidden = true;
  away(state, "Parley is open in another tab.", "Use here", takeOver);
}

/** Set once another tab took the connection: this one then stays down. */
let tabLost = false;
/** Closes what this tab has open, when another tab takes the connection. */
let closeAll: () => void = () => {};

async function start(): Promise<void> {
  const state = new ConnectionState();
  const steal = sessionStorage.getItem(TAKE_OVER) === "1";
  sessionStorage.removeItem(TAKE_OVER);
  const held = await holdTab(steal, () => {
    tabLost = true;
    closeAll();
    elsewhere(state);
  });
  if (!held) return elsewhere(state);
  const settings = await SettingsStore.open();
  const notifications = new Notifications();
  const options: ConnectOptions = {
    host: location.hostname,
    port: Number(location.port) || (location.protocol === "https:" ? 443 : 80),
    dial: () => dial(socketUrl(location)),
    // The other nodes of a cluster: tried, in order, when this origin's WebSocket goes away.
    alternates: await alternateEndpoints(),
    knownHosts: new PinnedKeys(settings),
    // One origin is one server to the browser (its storage, its CSP), so the pin is per origin;
    // every node of a cluster is held to that pin, as all present the cluster's one key.
    pinAs: location.origin,
    platform: browserPlatform(),
    onFirstContact: askTrustKey,
    autoAck: false,
    deviceSecret: await settings.deviceSecret(),
  };

  state.set("connecting", "Connecting…");
  const resumed = await resumeSaved(settings, options, state);
  if (tabLost) return resumed?.connection.client.close();
  let connection: FirstConnection;
  let username: string;
  if (resumed) {
    ({ connection, username } = resumed);
  } else {
    let fresh: FirstConnection | null = null;
    const login = new LoginView();
    state.set("connecting", "Not logged in");
    closeAll = () => fresh?.client.close();
    await login.show(await settings.lastUser(), async (c) => {
      if (!fresh || fresh.client.isClosed) fresh = await connectOnce(options);
      if (c.register) await fresh.client.register(c.username, c.password, c.invite);
      username = (await fresh.client.login(c.username, c.password)).username;
    });
    connection = fresh!;
    username = username!;
    await settings.rememberUser(username);
  }
  await settings.saveSession({ username, token: connection.client.token!.toHex() });
  await runChat(connection, username, options, settings, notifications, state);
}

/**
 * Connects to this origin, else to the first alternate that answers, turning a refused server
 * key into the loud refusal it must be.
 */
async function connectOnce(options: ConnectOptions): Promise<FirstConnection> {
  try {
    return await connectFirst(options);
  } catch (e) {
    if (e instanceof HostKeyChangedError) {
      // Refused by the user at first contact (Esc or "Refuse"): not an interception.
      if (e.message.endsWith("was not accepted")) throw new KeyNotTrustedError();
      refuse(e.message);
    }
    throw e;
  }
}

/**
 * Shows, in place of everything else, that the server's key was refused: a changed key may be
 * someone in the middle, and nothing more is sent to it.
 */
function refuse(why: string): void {
  const banner = byId("fatal");
  banner.textContent = `Connection refused: ${why}`;
  banner.hidden = false;
  byId("login-view").hidden = true;
  byId("chat-view").hidden = true;
  document.body.dataset.link = "refused";
}

/** Logs back in with the saved resume token, retrying while the server cannot be reached. */
async function resumeSaved(
  settings: SettingsStore,
  options: ConnectOptions,
  state: ConnectionState,
): Promise<{ connection: FirstConnection; username: string } | null> {
  const saved = await settings.session();
  if (!saved) return null;
  for (let attempt = 0; !tabLost; attempt++) {
    let connection: FirstConnection | null = null;
    try {
      connection = await connectOnce(options);
      const result = await connection.client.resume(Uint8Array.fromHex(saved.token));
      return { connection, username: result.username || saved.username };
    } catch (e) {
      connection?.client.close();
      if (e instanceof ParleyError && e.code === ErrorCode.BAD_TOKEN) {
        await settings.forgetSession();
        return null;
      }
      if (e instanceof KeyNotTrustedError) {
        // Stays here until the user asks again (the reload shows the key again).
        away(state, e.message, "Try again", () => location.reload());
        return await new Promise<never>(() => {});
      }
      if (e instanceof HostKeyChangedError) {
        state.set("ended", "The server's key was refused");
        throw e;
      }
      const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      state.set("down", `Cannot reach the server (${(e as Error).message}); retrying…`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  return null;
}

async function runChat(
  { client, at }: FirstConnection,
  username: string,
  options: ConnectOptions,
  settings: SettingsStore,
  notifications: Notifications,
  state: ConnectionState,
): Promise<void> {
  const history = await HistoryStore.open(username);
  const link: Link = new Link({ ...options, seen: history.seen }, {
    status: (text) => {
      state.set(text.startsWith("Reconnected") ? "online" : "down", text);
      chat.linkChanged();
    },
    event: async (m) => {
      if (m.type === MsgType.INITIALIZE) {
        const token = link.client?.token;
        if (token) await settings.saveSession({ username, token: token.toHex() });
        state.set("online", "Online");
      }
      await chat.onEvent(m);
    },
  });
  const chat = new WebChat(
    link,
    history,
    username,
    notifications,
    (token) => settings.saveSession({ username, token: token.toHex() }),
  );
  byId("me").textContent = username;
  notifications.offer();
  byId("chat-view").hidden = false;
  const logout = byId<HTMLButtonElement>("logout-button");
  logout.hidden = false;
  const logoutDialog = byId<HTMLDialogElement>("logout-dialog");
  logout.addEventListener("click", () => {
    logoutDialog.returnValue = "";
    logoutDialog.showModal();
  });
  logoutDialog.addEventListener("close", async () => {
    const choice = logoutDialog.returnValue;
    if (choice !== "here" && choice !== "everywhere") return;
    await settings.forgetSession();
    // Everywhere: every resume token of the account ends, so no other device logs back in.
    await link.client?.logout(choice === "everywhere").catch(() => {});
    link.close();
    location.reload();
  });
  closeAll = () => link.close();
  if (tabLost) return client.close();
  await chat.open(history.recent()[0]?.key ?? "world");
  state.set("online", "Online");
  link.open(client, at);
  const reason = await link.ended;
  if (tabLost) return;
  // The Link gives up with a sentence: a changed key on reconnecting, a token no longer taken,
  // a kick (this account logged in elsewhere). Never a page that looks alive but is not.
  if (reason.includes("presented identity key")) refuse(reason);
  else if (reason.includes("log in again")) {
    await settings.forgetSession();
    location.reload();
  } else away(state, `${reason}. This tab is disconnected.`, "Reconnect here", takeOver);
}

start().catch((e) => {
  const line = document.getElementById("status");
  if (line) line.textContent = `Parley could not start: ${(e as Error).message}`;
  document.body.dataset.failed = "true";
});
