// The web UI's shell: sign-in with the identity file (opened here; its keys stay in this
// page's memory as non-extractable WebCrypto keys and are gone when the tab closes), then
// the pages, one per `#/route`.

import "./style.css";

import { ApiError, type Device, signIn } from "./device";
import { IdentityError, openIdentityFile } from "./identity";
import { joinPage } from "./join-page";
import { type Page, audit, members, nodes, recordings, requests, reshare, search } from "./pages";
import { record } from "./record";
import { StatementError, shortFingerprint } from "./statements";
import { act, fill, field, h, say, sentence } from "./ui";

const ROUTES: [string, string, Page][] = [
  ["requests", "Requests", requests],
  ["recordings", "Recordings", recordings],
  ["record", "Record", record],
  ["search", "Search", search],
  ["members", "Members", members],
  ["reshare", "Re-share", reshare],
  ["nodes", "Nodes", nodes],
  ["audit", "Audit log", audit],
];

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;
const who = document.getElementById("who") as HTMLElement;
let device: Device | null = null;
let renders = 0;

function route(): string {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0] ?? "";
  return ROUTES.some(([id]) => id === name) ? name : "requests";
}

async function show(): Promise<void> {
  if (!device) return signedOut(location.hash.startsWith("#/join") ? () => joinPage(main, enter) : signInPage);
  const current = route();
  fill(
    nav,
    h(
      "ul",
      {},
      ROUTES.map(([id, label]) =>
        h("li", {}, h("a", { href: `#/${id}`, "aria-current": id === current ? "page" : undefined }, label)),
      ),
    ),
  );
  const page = ROUTES.find(([id]) => id === current)?.[2] ?? requests;
  // Each visit renders into a view of its own, so a slower earlier page never writes into a
  // later one; `aria-busy` says when the page is complete.
  const render = ++renders;
  const focused = document.activeElement;
  const view = h("div", {}, h("p", {}, "Loading and checking signatures…"));
  fill(main, view);
  main.setAttribute("aria-busy", "true");
  const alert = document.getElementById("alert");
  if (alert) fill(alert);
  try {
    await page(device, view);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      device = null;
      say("Your session ended: sign in again.");
      return signedOut(signInPage);
    }
    // A check in this browser refused what the server sent: said as such, not as a failure.
    const title = error instanceof StatementError ? "Refused in this browser" : "Something went wrong";
    fill(view, h("h1", { tabindex: -1 }, title), h("p", { role: "alert" }, sentence(error)));
  }
  if (render !== renders) return;
  main.setAttribute("aria-busy", "false");
  // The new page's heading takes focus, unless the reader moved it while the page loaded.
  if (document.activeElement === focused || document.activeElement === document.body) {
    view.querySelector("h1")?.focus();
  }
}

/** Clears the signed-in parts of the shell, then draws a page for someone signed out. */
function signedOut(draw: () => void): void {
  fill(nav);
  fill(who);
  draw();
}

/** Shows `signedIn` as the page's device: who is signed in, then the page asked for. */
async function enter(signedIn: Device): Promise<void> {
  device = signedIn;
  localStorage.setItem("quorate:vault", signedIn.vaultId);
  fill(
    who,
    `${signedIn.me.name} (${signedIn.me.role}) · `,
    h("code", {}, shortFingerprint(signedIn.identity.fingerprintHex)),
    " ",
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"),
  );
  say(`Signed in as ${signedIn.me.name}.`);
  if (!location.hash.startsWith("#/") || /^#\/(sign-in|join)/.test(location.hash)) location.hash = "#/requests";
  else await show();
}

function signInPage(): void {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const vault = h("input", {
    type: "text",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    pattern: "[0-9a-fA-F\\-]{36}",
    value: params.get("vault") ?? localStorage.getItem("quorate:vault") ?? "",
  });
  const file = h("input", { type: "file", required: true, accept: ".age,text/plain" });
  const passphrase = h("input", { type: "password", required: true, autocomplete: "current-password" });
  const form = h(
    "form",
    { class: "sign-in" },
    field("Vault ID", vault, "`quorate enroll` printed it (it is in ~/.config/quorate/config.toml); your admin can send you a link with it"),
    field("Identity file", file, "identity.age, as `quorate keygen` wrote it; it is opened here and never uploaded"),
    field("Passphrase", passphrase),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(form.querySelector("button"), "Opening your identity (scrypt takes a few seconds)…", async () => {
      const text = await file.files?.[0]?.text();
      if (!text) throw new IdentityError("choose your identity file");
      const identity = await openIdentityFile(text, passphrase.value);
      passphrase.value = "";
      say("Signing the server's challenge…");
      const signedIn = await signIn("", vault.value.trim().toLowerCase(), identity, localStorage).catch((error: unknown) => {
        if (error instanceof ApiError && (error.code === "unknown_member" || error.status === 404)) {
          throw new Error(
            `this identity (${identity.fingerprintShort}) is not an active member of that vault: check the vault ID; if you enrolled recently, an admin has yet to approve you (read them your fingerprint, ${identity.fingerprintShort})`,
          );
        }
        throw error;
      });
      await enter(signedIn);
    });
  });
  fill(
    main,
    h("h1", { tabindex: -1 }, "Sign in"),
    h("p", { class: "intro" }, "Your identity file is opened in this page with your passphrase. Your keys never leave this browser tab; the server only sees your signature on its challenge."),
    form,
    h("p", {}, "New here, with an invite code or the code the server printed? ", h("a", { href: "#/join" }, "Join a vault")),
  );
}

async function signOut(): Promise<void> {
  if (device) {
    await device.client.call("delete", "/api/v1/auth/session").catch(() => undefined);
  }
  device = null;
  say("Signed out; your keys are gone from this page.");
  signedOut(signInPage);
}

window.addEventListener("hashchange", () => {
  // The skip link moves focus, not the page.
  if (location.hash === "#main") main.focus();
  else void show();
});
void show();
