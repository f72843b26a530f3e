// Drives the web UI in Debian's Chromium with playwright-core, one story per run, for the
// end-to-end test `tests/tests/web.rs` (which sets up the vault, the members and the node
// with the real CLI and checks the outcome with it). Writes a screenshot of every page it
// visits. Fails on any page error or console error (a CSP violation is one). Where a story
// plays a lying server, `page.route` rewrites the real server's answers in the browser, as a
// compromised server or database would forge them (docs/PROTOCOL.md, "what a lying server
// can try, and what stops it").
//
//   node e2e/browser.mjs refused-while-pending | admin-approves-member | member-votes | search
//                        | admin-approves-late-member | admin-removes-member | member-records
//                        | member-reshares
//                        | first-admin-joins | member-joins
//
// The two `-joins` stories start signed out, with QUORATE_CODE (the code), QUORATE_NAME (who
// joins), QUORATE_IDENTITY_OUT (where the downloaded identity file is saved) and, for
// member-joins, QUORATE_GENESIS (the genesis an admin read out).
//
// Environment: QUORATE_URL, QUORATE_VAULT, QUORATE_IDENTITY (identity.age), QUORATE_PASSPHRASE,
// QUORATE_NAME (who signs in), QUORATE_SCREENSHOTS (folder), and per story QUORATE_PENDING and
// QUORATE_PENDING_FINGERPRINT (as `quorate enroll` printed it), QUORATE_NODE,
// QUORATE_NODE_FINGERPRINT (as `quorate-node status` shows it) and QUORATE_MODEL, or
// QUORATE_QUERY and QUORATE_EXPECT_TITLE, or QUORATE_REMOVE (a member's name), or QUORATE_FAKE_MIC (a WAV file the fake microphone
// plays once), QUORATE_RECORD_SECONDS, QUORATE_RECORD_TITLE and QUORATE_UPLOAD_FILE.
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { chromium } from "playwright-core";

const story = process.argv[2];
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const shots = env("QUORATE_SCREENSHOTS");
mkdirSync(shots, { recursive: true });

// A microphone that plays a file once (`%noloop`), granted without a prompt.
const fakeMicrophone = process.env.QUORATE_FAKE_MIC
  ? [
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${process.env.QUORATE_FAKE_MIC}%noloop`,
    ]
  : [];
// The flags this closed network needs: no background connections Chromium would make.
const browser = await chromium.launch({
  executablePath: process.env.QUORATE_CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    ...fakeMicrophone,
  ],
});
const problems = [];
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(60_000);
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
// Chromium reports every failed HTTP answer on the console; the refusal story expects one,
// and a vault without a policy yet answers its policy with 404 `no_policy`.
const expected = story === "refused-while-pending" ? /status of 401/ : null;
const noPolicyYet = (message) =>
  story === "first-admin-joins" && /status of 404/.test(message.text()) && message.location().url.endsWith("/policy");
page.on("console", (message) => {
  if (message.type() !== "error" || expected?.test(message.text()) || noPolicyYet(message)) return;
  problems.push(`console error: ${message.text()}`);
});

// axe-core checks each page against WCAG 2.1 A and AA. Its source is evaluated through the
// DevTools protocol, which the page's Content-Security-Policy does not apply to.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

async function accessible(name) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    });
    return {
      passed: result.passes.length,
      violations: result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    };
  });
  if (violations.violations.length) throw new Error(`accessibility of ${name}:\n${violations.violations.join("\n")}`);
  console.log(`axe ${name}: ${violations.passed} WCAG 2.1 AA rules pass, none fails`);
}

async function shot(name, target = page) {
  if (name !== "failure") await accessible(name);
  const path = join(shots, `${story}-${name}.png`);
  await target.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

/** Keys of the attacker's own, in the API's form (an age recipient and a base64url Ed25519 key). */
async function attackerKeys() {
  const verifying = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x;
  return { recipient: await identityToRecipient(await generateIdentity()), verifying_key: verifying };
}

/**
 * While `during(writes)` runs, the server's JSON answers to GETs of paths matching `path` are
 * rewritten by `lie`; every request that would change something is recorded in `writes`.
 */
async function lying(path, lie, during) {
  const writes = [];
  const record = (request) => {
    if (request.method() !== "GET") writes.push(`${request.method()} ${new URL(request.url()).pathname}`);
  };
  const matches = (url) => path.test(url.pathname);
  const handler = async (route) => {
    if (route.request().method() !== "GET") return route.fallback();
    const response = await route.fetch();
    await route.fulfill({ status: response.status(), json: lie(await response.json()) });
  };
  page.on("request", record);
  await page.route(matches, handler);
  try {
    await during(writes);
  } finally {
    await page.unroute(matches, handler);
    page.off("request", record);
  }
}

/**
 * Waits until the action just started has ended, in an alert or in the status `success`
 * names, and fails if the browser sent anything meanwhile (`writes`, recorded by `lying`).
 */
async function sentNothing(writes, success) {
  await page.locator(`#alert:not(:empty), #status:has-text("${success}")`).first().waitFor();
  if (writes.length) throw new Error(`the browser sent ${writes.join(", ")} for keys the server swapped in`);
}

/** Leaves the current page and comes back, so that it loads again from the server. */
async function reload(link, title) {
  await visit("Requests", "Requests");
  await visit(link, title);
}

async function signIn() {
  if (story === "member-votes") await signInToALyingServer();
  await page.goto(`${env("QUORATE_URL")}/#/sign-in?vault=${env("QUORATE_VAULT")}`);
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  // Keyboard first: the skip link is the first stop.
  await page.keyboard.press("Tab");
  const first = await page.evaluate(() => document.activeElement?.textContent);
  if (first !== "Skip to content") throw new Error(`the first Tab stop is ${first}, not the skip link`);
  await shot("sign-in");
  await page.getByLabel("Identity file").setInputFiles(env("QUORATE_IDENTITY"));
  if (story === "admin-approves-member") {
    // A wrong passphrase says what to do, and nothing is signed in.
    await page.getByLabel("Passphrase").fill("not the passphrase");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#alert").getByText("the passphrase is wrong").waitFor();
    await shot("sign-in-wrong-passphrase");
  }
  await page.getByLabel("Passphrase").fill(env("QUORATE_PASSPHRASE"));
  await page.getByLabel("Passphrase").press("Enter");
  if (story === "refused-while-pending") return;
  await page.locator("#who").getByText(env("QUORATE_NAME")).waitFor();
  await page.locator('#main[aria-busy="false"]').waitFor();
}

/** Opens a page from the navigation, keyboard only, and waits until it is complete. */
async function visit(link, title) {
  await page.getByRole("navigation").getByRole("link", { name: link, exact: true }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: title }).waitFor();
  await page.locator('#main[aria-busy="false"]').waitFor();
  const alert = (await page.locator("#alert").textContent())?.trim();
  if (alert) throw new Error(`the ${title} page shows an error: ${alert}`);
}

/**
 * A server whose `/me` names another vault than the one chosen (whose roster it would have
 * this browser pin on first use) is refused at sign-in, and nothing is signed in.
 */
async function signInToALyingServer() {
  const other = "00000000-0000-4000-8000-000000000000";
  await page.goto(`${env("QUORATE_URL")}/#/sign-in?vault=${env("QUORATE_VAULT")}`);
  await page.getByLabel("Identity file").setInputFiles(env("QUORATE_IDENTITY"));
  await lying(/^\/api\/v1\/me$/, (me) => ({ ...me, vault_id: other }), async () => {
    await page.getByLabel("Passphrase").fill(env("QUORATE_PASSPHRASE"));
    await page.getByLabel("Passphrase").press("Enter");
    await page.locator("#alert").getByText(`The server answered for vault ${other}, not for the vault you chose`).waitFor();
  });
  if (await page.locator("#who").textContent()) throw new Error("signed in to the vault the server named");
  await shot("sign-in-refused-other-vault");
  // The sign-in that follows starts from a fresh page.
  await page.goto("about:blank");
}

/**
 * On the Members page: the admin types the fingerprint the pending member read out and
 * approves them. First the server lies: it lists the member with the attacker's keys beside
 * their honest fingerprint; the browser computes the fingerprint of the keys it would sign,
 * refuses, and signs nothing.
 */
async function approvePending() {
  const pending = env("QUORATE_PENDING");
  const readOut = env("QUORATE_PENDING_FINGERPRINT");
  const field = page.getByLabel(`Fingerprint ${pending} reads out`);
  const approve = page.getByRole("button", { name: `Approve ${pending}` });
  const attacker = await attackerKeys();
  const swapped = (members) =>
    members.map((member) => (member.name === pending && member.status === "pending" ? { ...member, keys: attacker } : member));
  await lying(/^\/api\/v1\/vaults\/[^/]+\/members$/, swapped, async (writes) => {
    await visit("Members", "Members");
    await field.waitFor();
    if (await page.getByText(readOut).count()) throw new Error("the page shows the pending member's fingerprint to copy");
    await shot("members-pending");
    // Approving with nothing typed says what to do.
    await approve.click();
    await page.locator("#alert").getByText(`Type the fingerprint ${pending} reads out to you`).waitFor();
    await field.fill(readOut);
    await page.getByRole("row", { name: new RegExp(`^${pending} `) }).getByLabel("Role").selectOption("admin");
    await approve.click();
    await sentNothing(writes, `${pending} is on the roster`);
    await page.locator("#alert").getByText(`not that of the keys the server sent for ${pending}, so nothing was signed`).waitFor();
    await shot("members-refused-swapped-keys");
  });
  console.log(`refused the keys the server swapped in for ${pending}; nothing sent`);
  // The honest answer, the fingerprint typed as it is heard: lower case, spaces for dashes.
  await reload("Members", "Members");
  await field.fill(readOut.toLowerCase().replaceAll("-", " "));
  // No role is chosen for the admin: approving says to choose one, and signs nothing.
  await approve.click();
  await page.locator("#alert").getByText(`Choose ${pending}'s role`).waitFor();
  await page.getByRole("row", { name: new RegExp(`^${pending} `) }).getByLabel("Role").selectOption("member");
  await approve.click();
  const approved = page.locator("#status").getByText(`${pending} is on the roster`);
  await approved.waitFor();
  console.log(`status ${(await approved.textContent())?.trim()}`);
  await page.getByRole("cell", { name: pending, exact: true }).waitFor();
}

/** Fills the Join page's form (the code already there) and makes the identity. */
async function makeIdentity() {
  await page.getByLabel("Your name").fill(env("QUORATE_NAME"));
  await page.getByLabel("Passphrase for your identity file").fill(env("QUORATE_PASSPHRASE"));
  // Two passphrases that differ say what to do, and make nothing.
  await page.getByLabel("The same passphrase again").fill(`${env("QUORATE_PASSPHRASE")}!`);
  await page.getByRole("button", { name: "Make my identity" }).click();
  await page.locator("#alert").getByText("The two passphrases differ").waitFor();
  await page.getByLabel("The same passphrase again").fill(env("QUORATE_PASSPHRASE"));
  await page.getByRole("button", { name: "Make my identity" }).click();
  await page.getByRole("heading", { name: "Your new identity" }).waitFor();
  const fingerprint = (await page.locator("code.fingerprint").textContent())?.trim();
  await shot("join-identity");
  // Enrolling before the file is downloaded is refused: without it nobody signs in again.
  await page.getByRole("button", { name: "Enrol with this identity" }).click();
  await page.locator("#alert").getByText("Download your identity file first").waitFor();
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download identity.age" }).click()]);
  if (download.suggestedFilename() !== "identity.age") throw new Error(`the file is offered as ${download.suggestedFilename()}`);
  await download.saveAs(env("QUORATE_IDENTITY_OUT"));
  return fingerprint;
}

/**
 * The server answers an enrolment (at `path`) with `lie(the request's JSON)`, without the real
 * server seeing it; the page must refuse with `refusal` and pin nothing.
 */
async function refusesEnrolment(path, lie, refusal) {
  const handler = (route) => route.fulfill({ json: lie(route.request().postDataJSON()) });
  await page.route(path, handler);
  await page.getByRole("button", { name: "Enrol with this identity" }).click();
  await page.locator("#alert").getByText(refusal).waitFor();
  await page.unroute(path, handler);
  const pinned = await page.evaluate(() => Object.keys(localStorage).filter((key) => key.startsWith("quorate:pin:")));
  if (pinned.length) throw new Error(`pinned ${pinned.join(", ")} after refusing the enrolment`);
}

/** What the enrolled page shows, as `key value` lines for the test to read. */
async function report(fingerprint) {
  const facts = await page.locator("dl dd").allTextContents();
  const [vault, shown, genesis] = facts.map((fact) => fact.trim());
  if (shown !== fingerprint) throw new Error(`the page shows fingerprint ${shown}, made ${fingerprint}`);
  console.log(`vault ${vault}`);
  console.log(`fingerprint ${fingerprint}`);
  console.log(`genesis ${genesis.replaceAll(" ", "")}`);
  const cli = (await page.locator("pre code").textContent())?.trim();
  if (!cli?.includes(`--genesis ${genesis.replaceAll(" ", "")}`)) throw new Error(`the CLI line is ${cli}`);
}

const stories = {
  // Someone who ran the server starts in the browser: the page makes their identity, signs
  // the genesis, makes the search key, and they set the policy and invite a member there.
  async "first-admin-joins"() {
    await page.goto(`${env("QUORATE_URL")}/#/sign-in`);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByRole("link", { name: "Join a vault" }).click();
    await page.getByRole("heading", { name: "Join a vault" }).waitFor();
    await shot("join");
    await page.getByLabel("Code").fill(env("QUORATE_CODE"));
    const fingerprint = await makeIdentity();
    // The server answers the genesis with another one of its own: refused, nothing pinned.
    await refusesEnrolment(
      /\/api\/v1\/enrol\/first-admin$/,
      (body) => ({ vault_id: "00000000-0000-4000-8000-000000000000", roster_genesis: "ab".repeat(32), genesis_entry: body.genesis, fingerprint: "" }),
      "a genesis other than the one this browser signed",
    );
    console.log("refused a genesis the server swapped; nothing pinned");
    await page.getByRole("button", { name: "Enrol with this identity" }).click();
    await page.getByRole("heading", { name: "Your vault is started" }).waitFor();
    await report(fingerprint);
    await shot("joined-first-admin");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.locator("#who").getByText(env("QUORATE_NAME")).waitFor();
    await page.locator('#main[aria-busy="false"]').waitFor();
    await visit("Members", "Members");
    await page.getByText("No policy yet").waitFor();
    await page.getByLabel("Approvals needed").fill("1");
    await page.getByRole("button", { name: "Sign the policy" }).click();
    await page.locator("#status").getByText("Policy 0: at least 1 approval unlocks a recording.").waitFor();
    await page.getByText("Policy 0: a recording unlocks with at least 1 approval").waitFor();
    await page.getByRole("button", { name: "Make a member invite code" }).click();
    const invite = page.getByText(/^Member invite code: [A-Z0-9-]+ \(works once/);
    await invite.waitFor();
    const code = (await invite.locator("code").first().textContent())?.trim();
    const link = (await invite.locator("code").nth(1).textContent())?.trim();
    if (!link?.endsWith(`#/join?code=${encodeURIComponent(code)}`)) throw new Error(`the join link is ${link}`);
    console.log(`invite ${code}`);
    await shot("members-first-admin");
  },

  // A member joins from the invite link, with the genesis their admin read out.
  async "member-joins"() {
    await page.goto(`${env("QUORATE_URL")}/#/join?code=${encodeURIComponent(env("QUORATE_CODE"))}`);
    await page.getByRole("heading", { name: "Join a vault" }).waitFor();
    if ((await page.getByLabel("Code").inputValue()) !== env("QUORATE_CODE")) throw new Error("the link's code is not filled in");
    const genesis = env("QUORATE_GENESIS");
    await page.getByLabel("Genesis your admin read to you (optional)").fill(genesis.toUpperCase().match(/.{8}/g).join(" "));
    const fingerprint = await makeIdentity();
    // The server names a genesis the entry it sends is not: refused, nothing pinned.
    await refusesEnrolment(
      /\/api\/v1\/enrol\/member$/,
      () => ({ vault_id: env("QUORATE_VAULT"), roster_genesis: genesis, genesis_entry: "AAAA", fingerprint: "" }),
      "The vault's genesis entry",
    );
    console.log("refused a genesis entry the server forged; nothing pinned");
    await page.getByRole("button", { name: "Enrol with this identity" }).click();
    await page.getByRole("heading", { name: "You are enrolled" }).waitFor();
    await report(fingerprint);
    await page.getByText("You are pending.").waitFor();
    await shot("joined-member");
    const stored = await page.evaluate(() => Object.keys(localStorage));
    const unexpected = stored.filter((key) => !/^quorate:(vault$|pin:)/.test(key));
    if (unexpected.length) throw new Error(`the page stored ${unexpected.join(", ")}`);
  },


  // An admin signs in, compares the pending member's fingerprint and approves them (the
  // roster entry is signed in the browser), approves the node, then looks at every page.
  async "admin-approves-member"() {
    await approvePending();
    // A recorder (a recording machine) is approved as a recorder: no share, no vote.
    const recorder = env("QUORATE_PENDING_RECORDER");
    await page.getByLabel(`Fingerprint ${recorder} reads out`).fill(env("QUORATE_PENDING_RECORDER_FINGERPRINT"));
    const row = page.getByRole("row", { name: new RegExp(`^${recorder} `) });
    await row.getByLabel("Role").selectOption("recorder");
    await page.getByRole("button", { name: `Approve ${recorder}` }).click();
    await page.locator("#status").getByText(`${recorder} is on the roster.`).waitFor();
    await row.getByRole("cell", { name: "recorder", exact: true }).waitFor();
    await row.getByRole("cell", { name: "active", exact: true }).waitFor();
    await page.getByText(/members, 1 recorders\./).waitFor();
    console.log(`recorder ${recorder} approved as a recorder`);
    await page.getByRole("button", { name: "Make a member invite code" }).click();
    await page.getByText(/^Member invite code: [A-Z0-9-]+ \(works once/).waitFor();
    await page.getByRole("button", { name: "Make a recorder invite code" }).click();
    await page.getByText(/^Recorder invite code: [A-Z0-9-]+ \(works once/).waitFor();
    await shot("members-approved");
    // The node enrolled and waits; the admin approves it for the model it loaded, typing the
    // fingerprint the node shows. First the server lists the node with the attacker's keys.
    const node = env("QUORATE_NODE");
    const fillApproval = async () => {
      await page.getByLabel(`Fingerprint of ${node}`).fill(env("QUORATE_NODE_FINGERPRINT"));
      await page.getByLabel("Model SHA-256").fill(env("QUORATE_MODEL"));
      await page.getByLabel("Hardware, as you checked it").fill("test box, checked by Ada");
      await page.getByRole("button", { name: `Approve ${node}` }).click();
    };
    const attacker = await attackerKeys();
    const swapped = (nodes) => nodes.map((view) => (view.name === node ? { ...view, keys: attacker } : view));
    await lying(/^\/api\/v1\/vaults\/[^/]+\/nodes$/, swapped, async (writes) => {
      await visit("Nodes", "Nodes");
      await shot("nodes-pending");
      await fillApproval();
      await sentNothing(writes, `${node} is approved`);
      await page.locator("#alert").getByText(`not that of the keys the server sent for node ${node}, so nothing was signed`).waitFor();
      await shot("nodes-refused-swapped-keys");
    });
    console.log(`refused the keys the server swapped in for node ${node}; nothing sent`);
    await reload("Nodes", "Nodes");
    await fillApproval();
    await page.locator("#status").getByText(`${node} is approved`).waitFor();
    await page.getByText("approved by Ada until").waitFor();
    await shot("nodes");
    await visit("Recordings", "Recordings");
    await shot("recordings");
    await visit("Audit log", "Audit log");
    await page.getByText(/^Verified: \d+ entries/).waitFor();
    await shot("audit");
    // This browser now keeps the head it verified: a server that serves the log without its
    // newest entry (or rewrites it) is refused.
    await lying(/^\/api\/v1\/vaults\/[^/]+\/audit$/, (entries) => entries.slice(0, -1), async () => {
      await visit("Requests", "Requests");
      await page.getByRole("navigation").getByRole("link", { name: "Audit log", exact: true }).click();
      await page.getByRole("heading", { level: 1, name: "Refused in this browser" }).waitFor();
      await page.getByRole("alert").getByText("The audit log no longer holds entry").waitFor();
      await shot("audit-refused-cut");
    });
    await visit("Requests", "Requests");
    await shot("requests");
  },

  // Someone enrolled but not yet approved is told why they cannot sign in, and what to do.
  async "refused-while-pending"() {
    await page.locator("#alert").getByText("an admin has yet to approve you").waitFor();
    if (await page.locator("#who").textContent()) throw new Error("signed in while pending");
    await shot("refused");
  },

  // After a release, an admin approves a newcomer: the browser seals them the search key and
  // the released copy's key.
  async "admin-approves-late-member"() {
    await approvePending();
    await shot("members-late-approved");
  },

  // An admin removes a member (QUORATE_REMOVE) on the Members page: the page then replaces
  // the search key they held and re-indexes the released minutes under it.
  async "admin-removes-member"() {
    const leaving = env("QUORATE_REMOVE");
    await visit("Members", "Members");
    page.once("dialog", (dialog) => dialog.accept());
    await page.getByRole("button", { name: `Remove ${leaving}` }).click();
    const done = page.locator("#status").getByText(`${leaving} was removed and the search key replaced`);
    await done.waitFor();
    const alert = (await page.locator("#alert").textContent())?.trim();
    if (alert) throw new Error(`the Members page shows an error: ${alert}`);
    console.log(`status ${(await done.textContent())?.trim()}`);
    await shot("members-removed");
  },

  // A member does their part of a re-share on the Re-share page: deals their share, or
  // takes their new one, whichever the key waits for (QUORATE_EXPECT: what the page says).
  async "member-reshares"() {
    await visit("Re-share", "Re-share");
    await accessible("reshare");
    await shot("reshare");
    await page.getByRole("button", { name: /^Do my part for/ }).click();
    await page.locator("#status").getByText(env("QUORATE_EXPECT")).waitFor();
    const alert = (await page.locator("#alert").textContent())?.trim();
    if (alert) throw new Error(`the Re-share page shows an error: ${alert}`);
    await shot("reshare-done");
  },

  // A member sees the open request with every signature checked, approves it: the share is
  // re-sealed to the node and the vote signed in the browser.
  async "member-votes"() {
    await visit("Requests", "Requests");
    await page.getByText("asks to transcribe").first().waitFor();
    await page.getByText("Request, manifest, node approval and vote signatures checked in this browser").first().waitFor();
    // Ada's vote, made with the CLI, verified here.
    await page.getByText("Ada approved").waitFor();
    await shot("request-open");
    await page.getByLabel("Comment (optional, signed with your vote)").fill("approved in the browser");
    await page.getByRole("button", { name: "Approve" }).click();
    await page.locator("#status").getByText("Your approval is counted").waitFor();
    await shot("request-approved");
    // The same page on a phone.
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("request-phone");
    console.log(`status ${(await page.locator("#status").textContent())?.trim()}`);
  },

  // A member records a meeting from the (fake) microphone: encrypted in the page and uploaded
  // while recording; then uploads a recording file picked from disk, with progress.
  async "member-records"() {
    await visit("Record", "Record");
    await shot("record");
    const live = page.getByRole("region", { name: "Record a meeting" });
    await live.getByLabel("Title").fill(env("QUORATE_RECORD_TITLE"));
    await live.getByLabel("Attendees").fill("Ada, Bo, Cy");
    await live.getByRole("button", { name: "Start recording" }).click();
    await page.locator("#status").getByText("Recording. The audio is encrypted in this tab").waitFor();
    await page.waitForTimeout(Number(env("QUORATE_RECORD_SECONDS")) * 1000);
    await live.getByText(/encrypted · .* on the server/).waitFor();
    await shot("recording");
    await live.getByRole("button", { name: "Stop and seal" }).click();
    const sealed = live.getByText(/^Sealed and uploaded: recording [0-9a-f-]{36}\.$/);
    await sealed.waitFor();
    console.log(`recorded ${(await sealed.textContent()).match(/[0-9a-f-]{36}/)[0]}`);
    await shot("recorded");

    const upload = page.getByRole("region", { name: "Upload a recording file" });
    await upload.getByLabel("Recording file").setInputFiles(env("QUORATE_UPLOAD_FILE"));
    await upload.getByRole("button", { name: "Encrypt and upload" }).click();
    const uploaded = upload.getByText(/^Sealed and uploaded: recording [0-9a-f-]{36}\.$/);
    await uploaded.waitFor();
    if ((await upload.locator("progress").getAttribute("value")) !== "1") throw new Error("the progress bar is not full");
    console.log(`uploaded ${(await uploaded.textContent()).match(/[0-9a-f-]{36}/)[0]}`);
    await shot("uploaded");
    // Nothing secret was kept: the page stores its pins and nothing else.
    const stored = await page.evaluate(() => Object.keys(localStorage));
    const unexpected = stored.filter((key) => !/^quorate:(vault$|pin:|policy:|audit:)/.test(key));
    if (unexpected.length) throw new Error(`the page stored ${unexpected.join(", ")}`);
  },

  // A member searches released minutes: the query is blinded here, snippets come from the
  // released copy opened here.
  async search() {
    await visit("Search", "Search minutes");
    await page.getByLabel("Words to find").fill(env("QUORATE_QUERY"));
    await page.getByLabel("Words to find").press("Enter");
    const title = page.locator(".hit h2").first();
    await title.waitFor();
    const found = (await title.textContent())?.trim();
    if (found !== env("QUORATE_EXPECT_TITLE")) throw new Error(`the first hit is "${found}"`);
    const marked = await page.locator(".hit mark").allTextContents();
    if (!marked.length) throw new Error("no word of the query is highlighted in the snippets");
    console.log(`hit ${found}; marked ${marked.join(", ")}`);
    await shot("results");
    // The whole minutes, opened in this page from the Recordings list, name their speaker.
    await visit("Recordings", "Recordings");
    const row = page.getByRole("row").filter({ hasText: env("QUORATE_EXPECT_TITLE") });
    await row.getByRole("button", { name: "Read the minutes" }).click();
    const minutes = page.locator(".transcript li").first();
    await minutes.waitFor();
    const line = (await minutes.textContent())?.trim() ?? "";
    const speaker = env("QUORATE_EXPECT_SPEAKER");
    if (!line.includes(`${speaker}: `)) throw new Error(`the minutes read "${line}", not a line by ${speaker}`);
    console.log(`minutes ${line}`);
    await shot("minutes");
  },
};

try {
  const run = stories[story];
  if (!run) throw new Error(`unknown story ${story}: ${Object.keys(stories).join(", ")}`);
  if (!story.endsWith("-joins")) await signIn();
  await run();
  if (problems.length) throw new Error(problems.join("\n"));
  console.log(`story ${story} passed`);
} catch (error) {
  await shot("failure").catch(() => undefined);
  console.error(`story ${story} failed: ${error.message}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
