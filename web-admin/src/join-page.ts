// The join page: a person with a code makes their identity in this page, downloads it,
// enrols, and is shown what to read out and compare. With the code the server printed at
// its first start, they become the vault's first admin and the page makes the vault's
// search key too, so someone who ran the server can start with a browser alone.

import { Client } from "./client";
import { type Device, signIn } from "./device";
import { type NewIdentity, IdentityError, MIN_PASSPHRASE_LENGTH, createIdentity } from "./identity";
import { type CodeLookup, type Joined, enrol, lookUpCode, parseGenesis } from "./join";
import { shortFingerprint } from "./statements";
import { act, fill, field, grouped, h, say } from "./ui";

/** What the join page hands back once the first admin is signed in. */
export type Enter = (device: Device) => Promise<void>;

const WHOM: Record<CodeLookup["purpose"], string> = {
  "first-admin": "makes you the first admin of vault",
  member: "enrols you as a member of vault",
  recorder: "enrols a recording machine in vault",
  node: "enrols a transcription node in vault",
};

export function joinPage(main: HTMLElement, enter: Enter): void {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const code = h("input", { type: "text", required: true, autocomplete: "off", spellcheck: "false", value: params.get("code") ?? "" });
  const name = h("input", { type: "text", required: true, autocomplete: "name" });
  const passphrase = h("input", { type: "password", required: true, autocomplete: "new-password", minlength: String(MIN_PASSPHRASE_LENGTH) });
  const again = h("input", { type: "password", required: true, autocomplete: "new-password" });
  const genesis = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const form = h(
    "form",
    { class: "sign-in" },
    field("Code", code, "the invite an admin gave you, or the code the server printed at its first start"),
    field("Your name", name, "as the admins will see it"),
    field("Passphrase for your identity file", passphrase, `at least ${MIN_PASSPHRASE_LENGTH} characters; nobody can recover it for you`),
    field("The same passphrase again", again),
    field("Genesis your admin read to you (optional)", genesis, "64 hex digits from their Members page: if the server shows another vault, you are told and nothing is kept"),
    h("button", { type: "submit", class: "primary" }, "Make my identity"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(form.querySelector("button"), "Looking up the code…", async () => {
      if (passphrase.value !== again.value) throw new IdentityError("the two passphrases differ: type them again");
      const expected = genesis.value.trim() ? parseGenesis(genesis.value) : null;
      const client = new Client("");
      const lookup = await lookUpCode(client, code.value);
      say("Making your identity (scrypt takes a few seconds)…");
      const made = await createIdentity(passphrase.value);
      passphrase.value = "";
      again.value = "";
      say("");
      downloadStep(main, enter, { client, code: code.value, lookup, name: name.value, made, expected });
    });
  });
  fill(
    main,
    h("h1", { tabindex: -1 }, "Join a vault"),
    h(
      "p",
      { class: "intro" },
      "Your identity (an encryption key and a signing key) is made in this page and saved to a file you download, protected by your passphrase. It is never sent: the server only receives its public keys. The same file works with the `quorate` command.",
    ),
    form,
    h("p", {}, "Already have an identity file? ", h("a", { href: "#/sign-in" }, "Sign in")),
  );
  main.querySelector("h1")?.focus();
}

interface Pending {
  client: Client;
  code: string;
  lookup: CodeLookup;
  name: string;
  made: NewIdentity;
  expected: string | null;
}

/** Step two: the identity file is offered, and enrolment waits until it was downloaded. */
function downloadStep(main: HTMLElement, enter: Enter, pending: Pending): void {
  const { lookup, made } = pending;
  const url = URL.createObjectURL(new Blob([made.file], { type: "application/octet-stream" }));
  let downloaded = false;
  const link = h("a", { href: url, download: "identity.age", class: "button" }, "Download identity.age");
  link.addEventListener("click", () => {
    downloaded = true;
  });
  const enrolButton = h("button", { type: "button", class: "primary" }, "Enrol with this identity");
  enrolButton.addEventListener("click", () =>
    act(enrolButton, "Enrolling and checking the vault's genesis…", async () => {
      if (!downloaded) {
        throw new IdentityError("download your identity file first: without it you cannot sign in again, and nobody can recover it");
      }
      const joined = await enrol(pending.client, pending.code, lookup, pending.name, made.identity, pending.expected, localStorage);
      say("");
      enrolledStep(main, enter, made, joined);
    }),
  );
  fill(
    main,
    h("h1", { tabindex: -1 }, "Your new identity"),
    h("p", {}, `This code ${WHOM[lookup.purpose]} `, h("code", {}, lookup.vaultId), "."),
    h("p", {}, "Your fingerprint: ", h("code", { class: "fingerprint" }, made.identity.fingerprintShort)),
    h("ol", {},
      h("li", {}, "Download your identity file and keep it safe, with its passphrase: ", link),
      h("li", {}, "Enrol: ", enrolButton),
    ),
  );
  main.querySelector("h1")?.focus();
}

/** Step three: what was pinned, what to read out and compare, and what comes next. */
function enrolledStep(main: HTMLElement, enter: Enter, made: NewIdentity, joined: Joined): void {
  const cli = `quorate connect --server ${location.origin} --vault ${joined.vaultId} --genesis ${joined.genesis} --identity identity.age`;
  const next = h("div", {});
  fill(
    main,
    h("h1", { tabindex: -1 }, joined.firstAdmin ? "Your vault is started" : "You are enrolled"),
    h("dl", {},
      h("dt", {}, "Vault"), h("dd", {}, h("code", {}, joined.vaultId)),
      h("dt", {}, "Your fingerprint"), h("dd", {}, h("code", { class: "fingerprint" }, made.identity.fingerprintShort)),
      h("dt", {}, "Genesis (pinned in this browser)"), h("dd", {}, h("code", { class: "genesis" }, grouped(joined.genesis))),
      h("dt", {}, "First admin"), h("dd", {}, `${joined.founder.name} (`, h("code", {}, shortFingerprint(joined.founder.fingerprint)), ")"),
    ),
    next,
    h("h2", {}, "The same identity in the command line"),
    h("p", {}, "Save the file where `quorate` will find it and run:"),
    h("pre", {}, h("code", {}, cli)),
  );
  if (joined.firstAdmin) {
    const start = h("button", { type: "button", class: "primary" }, "Continue");
    // The person reads the genesis and fingerprint first; a retry after a failed connection
    // does not make a second key.
    let keyMade = false;
    const begin = () =>
      act(start, "Signing in and making the vault's search key…", async () => {
        const device = await signIn("", joined.vaultId, made.identity, localStorage);
        if (!keyMade) {
          await device.makeSearchKey();
          keyMade = true;
        }
        say("The vault's search key is made and sealed to you.");
        await enter(device);
      });
    fill(
      next,
      h("p", {}, "You are the vault's first admin. Continue to sign in and make the vault's search key (sealed to you alone). Then set how many approvals unlock a recording, then invite the members (both on the Members page). Each new member compares the genesis above with the one you read to them."),
      start,
    );
    start.addEventListener("click", () => void begin());
  } else {
    const who = joined.recorder ? "the recording machine's" : "your";
    fill(
      next,
      h("p", {}, `You are pending. Over a channel you trust (in person, by phone), read ${who} fingerprint to an admin: they approve it after comparing. Have them read you the genesis on their Members page and the first admin's fingerprint, and compare both with the ones above: if either differs, this server is showing you a vault of its own; tell the admin.`),
      h("p", {}, "Once approved, ", h("a", { href: `#/sign-in?vault=${joined.vaultId}` }, "sign in"), " with the file you downloaded."),
    );
  }
  main.querySelector("h1")?.focus();
}
