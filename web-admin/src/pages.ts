// The pages. Each loads what it shows, verifies every signature it relies on in this
// browser (through `Device`), and offers the actions the member's role allows.

import { normalise, importSearchKey, token } from "./blind";
import type { Schemas } from "./client";
import { type CheckedRequest, type Device, type TranscriptDocument } from "./device";
import type { Roster } from "./roster";
import { type Role, fingerprintOf, holdsShares, shortFingerprint } from "./statements";
import { hex } from "./wire";
import { act, fill, field, grouped, h, message, say, when } from "./ui";

export type Page = (device: Device, main: HTMLElement) => Promise<void>;

function heading(main: HTMLElement, title: string, ...intro: (Node | string)[]): void {
  fill(main, h("h1", { tabindex: -1 }, title), intro.length ? h("p", { class: "intro" }, ...intro) : null);
}

function table(caption: string, columns: string[], rows: (Node | string)[][]): HTMLElement {
  if (!rows.length) return h("p", { class: "empty" }, `No ${caption.toLowerCase()} yet.`);
  return h(
    "div",
    { class: "table", role: "region", "aria-label": caption, tabindex: 0 },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) => h("td", { "data-label": columns[i] }, cell))))),
    ),
  );
}

function fingerprint(hexText: string): HTMLElement {
  return h("code", { class: "fingerprint", title: hexText }, shortFingerprint(hexText));
}

/**
 * Where a fingerprint not yet vouched for would be: it is not shown, so that the admin
 * compares what the member or node reads out with the keys signed, not with the page.
 */
const READ_OUT = "(read out to you)";

/** A field for the fingerprint someone reads out, to type or paste. */
function readOutField(label: string, hint: string): [HTMLElement, HTMLInputElement] {
  const input = h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "ABCD-EFGH-…" });
  return [field(label, input, `${hint}; case, dashes and spaces do not matter`), input];
}

function button(label: string, onclick: (event: Event) => void, kind = ""): HTMLButtonElement {
  return h("button", { type: "button", class: kind, onclick }, label);
}

// ---------------------------------------------------------------------------------------
// Requests: what awaits this member's vote

export const requests: Page = async (device, main) => {
  heading(main, "Requests", "Unlock and release requests of this vault. Each is checked in this browser before you can vote: the request's signature, the recording's manifest and the node's approval by an admin.");
  const list = h("div", { class: "cards" });
  main.append(list);
  const roster = await device.roster();
  const views = await device.client.call("get", "/api/v1/vaults/{vault}/requests", { path: { vault: device.vaultId } });
  if (!views.length) fill(list, h("p", { class: "empty" }, "No requests yet. Ask for one from the Recordings page."));
  for (const view of views) {
    const card = h("article", { class: "card", "aria-labelledby": `r-${view.request_id}` });
    list.append(card);
    try {
      renderRequest(device, roster, card, await device.checkRequest(roster, view));
    } catch (error) {
      fill(
        card,
        h("h2", { id: `r-${view.request_id}` }, `Request ${view.request_id.slice(0, 8)}`),
        h("p", { class: "refused" }, `Refused in this browser: ${message(error)}. Do not vote on it; tell an admin.`),
      );
    }
  }
};

function renderRequest(device: Device, roster: Roster, card: HTMLElement, checked: CheckedRequest): void {
  const { view, request, node } = checked;
  const title = checked.metadata?.title ?? "(details sealed before you joined)";
  const mine = view.votes.find((vote) => vote.voter === device.identity.fingerprintHex);
  const own = request.requester === device.identity.fingerprintHex;
  const comment = h("input", { type: "text", maxlength: 4096, autocomplete: "off" });
  const verb = request.purpose === "transcribe" ? "transcribe" : "release the transcript of";
  const actions =
    view.status !== "open"
      ? null
      : mine
        ? h("p", {}, `You voted: ${mine.decision}.`)
        : own
          ? h("p", {}, "You asked for this; others decide (four eyes).")
          : h(
              "div",
              { class: "actions" },
              field("Comment (optional, signed with your vote)", comment),
              button("Approve", (event) =>
                act(event.currentTarget as HTMLButtonElement, "Re-sealing your share to the node and signing your approval…", async () => {
                  const after = await device.vote(checked, true, comment.value);
                  say(`Your approval is counted: ${after.approvals} of ${after.threshold}; the request is ${after.status}.`);
                  renderRequest(device, roster, card, await device.checkRequest(roster, after));
                }), "primary"),
              button("Deny", (event) =>
                act(event.currentTarget as HTMLButtonElement, "Signing your denial…", async () => {
                  const after = await device.vote(checked, false, comment.value);
                  say(`Your denial is counted; the request is ${after.status}.`);
                  renderRequest(device, roster, card, await device.checkRequest(roster, after));
                }), "danger"),
            );
  fill(
    card,
    h("h2", { id: `r-${view.request_id}` }, `${checked.requesterName} asks to ${verb} “${title}”`),
    h(
      "dl",
      {},
      h("dt", {}, "Status"),
      h("dd", { class: `status-${view.status}` }, `${view.status}: ${view.approvals} of ${view.threshold} approvals, ${view.denials} denials`),
      h("dt", {}, "Reason"),
      h("dd", {}, request.reason),
      ...(request.purpose === "transcribe"
        ? [h("dt", {}, "Language"), h("dd", {}, request.language ?? "detected by the node")]
        : []),
      h("dt", {}, "Node"),
      h("dd", {}, `${node.hardware} — model ${hex(node.modelSha256).slice(0, 16)}…, approved until ${when(node.expiresAt)}`),
      h("dt", {}, "Closes"),
      h("dd", {}, when(request.expiresAt)),
      h("dt", {}, "Votes"),
      h(
        "dd",
        {},
        checked.votes.length
          ? h(
              "ul",
              { class: "votes" },
              checked.votes.map((vote) =>
                vote.problem
                  ? h("li", { class: "refused" }, `${vote.name}: refused here (${vote.problem})`)
                  : h("li", {}, `${vote.name} ${vote.approve ? "approved" : "denied"}${vote.comment ? `: “${vote.comment}”` : ""}`),
              ),
            )
          : "none yet",
      ),
      h("dt", {}, "Verified"),
      h("dd", { class: "verified" }, "Request, manifest, node approval and vote signatures checked in this browser"),
    ),
    actions,
  );
}

// ---------------------------------------------------------------------------------------
// Members

export const members: Page = async (device, main) => {
  heading(main, "Members", "The roster is a chain of entries signed by admins; this browser replays it from the genesis it pinned.");
  const roster = await device.roster();
  const views = await device.client.call("get", "/api/v1/vaults/{vault}/members", { path: { vault: device.vaultId } });
  const rows = views.map((member) => {
    const onRoster = roster.member(member.fingerprint) ?? roster.recorder(member.fingerprint);
    const actions = h("div", { class: "row-actions" });
    if (device.isAdmin && member.status === "pending") {
      const [readOut, typed] = readOutField(
        `Fingerprint ${member.name} reads out`,
        "`quorate enroll` printed it on their device; have them read it to you",
      );
      // Every role is offered and none chosen: the admin says what the fingerprint they
      // compared belongs to (a person, or a recording machine), not the server's listing.
      const roles: Role[] = ["member", "admin", "recorder"];
      const role = h(
        "select",
        {},
        h("option", { value: "", disabled: true, selected: true }, "choose…"),
        ...roles.map((name) => h("option", { value: name }, name)),
      );
      actions.append(
        readOut,
        field("Role", role),
        button(`Approve ${member.name}`, (event) =>
          act(event.currentTarget as HTMLButtonElement, `Checking the fingerprint and signing the roster entry for ${member.name}…`, async () => {
            const shared = await device.approveMember(member, role.value as Role, typed.value);
            say(`${member.name} is on the roster${shared ? `; ${shared} ${shared === 1 ? "key" : "keys"} sealed to them` : ""}.`);
            await members(device, main);
          }), "primary"),
      );
    }
    if (device.isAdmin && onRoster && member.fingerprint !== device.identity.fingerprintHex) {
      actions.append(
        button(`Remove ${member.name}`, (event) =>
          act(event.currentTarget as HTMLButtonElement, `Signing the removal of ${member.name}…`, async () => {
            if (!window.confirm(`Remove ${member.name} from the vault? They get no new shares.`)) return;
            const role = await device.removeMember(member);
            if (!holdsShares(role)) {
              say(`${member.name} was removed.`);
            } else {
              // They held the search key: replace it, then re-index the minutes under it.
              say(`${member.name} was removed. Replacing the search key they held…`);
              const done = await device.rotateAfterRemoval(member.fingerprint, (count, total) =>
                say(`Re-indexing the released minutes: ${count} of ${total}…`),
              );
              say(
                `${member.name} was removed and the search key replaced; ${done.reindexed} released minutes re-indexed` +
                  (done.unreadable ? ` (${done.unreadable} you cannot open: a member who can re-indexes them with \`quorate search-key reindex\`).` : "."),
              );
            }
            await members(device, main);
          }), "danger"),
      );
    }
    // The roster's fingerprints are computed here from signed keys; a pending member's is
    // what they read out, so the server's column is not shown.
    const shown = onRoster ? fingerprint(onRoster.fingerprint) : member.status === "pending" ? READ_OUT : fingerprint(member.fingerprint);
    return [member.name, shown, onRoster ? onRoster.role : member.role, member.status, actions];
  });
  main.append(
    h(
      "p",
      {},
      `Roster verified: ${roster.digests.length} entries, ${roster.active.length} members, ${roster.recorders.length} recorders.`,
    ),
    h("p", {}, "Genesis (read it to each new member, who compares it): ", h("code", { class: "genesis" }, grouped(roster.genesis()))),
    table("Members", ["Name", "Fingerprint", "Role", "Status", ""], rows),
  );
  await policySection(device, roster, main);
  if (device.isAdmin) {
    const out = h("p", { role: "status" });
    main.append(
      h("h2", {}, "Invite someone"),
      h(
        "p",
        {},
        "They join with the code in this web UI (its Join page, or the link shown with the code) or with `quorate enroll --code …`, then read their fingerprint out to you; you approve them above. A recorder (a machine that records meetings, see docs/RECORDERS.md) uploads and holds nothing: no share, no vote, no title.",
      ),
      ...(["member", "recorder"] as const).map((purpose) =>
        button(`Make a ${purpose} invite code`, (event) =>
          act(event.currentTarget as HTMLButtonElement, `Asking for a ${purpose} invite…`, async () => {
            const invite = await device.client.call("post", "/api/v1/vaults/{vault}/invites", {
              path: { vault: device.vaultId },
              body: { purpose, ttl_seconds: null },
            });
            const link = `${location.origin}${location.pathname}#/join?code=${encodeURIComponent(invite.code)}`;
            fill(
              out,
              `${purpose === "member" ? "Member" : "Recorder"} invite code: `,
              h("code", {}, invite.code),
              ` (works once, until ${when(invite.expires_at)}). Link to join in the browser: `,
              h("code", {}, link),
            );
          })),
      ),
      out,
    );
  }
};

/** The vault's policy (verified here), and for an admin the form that signs a new one. */
async function policySection(device: Device, roster: Roster, main: HTMLElement): Promise<void> {
  const policy = await device.policyIfAny(roster);
  main.append(
    h("h2", {}, "Policy"),
    h(
      "p",
      {},
      policy
        ? `Policy ${policy.sequence}: a recording unlocks with at least ${policy.minThreshold} ${policy.minThreshold === 1 ? "approval" : "approvals"} (signed by an admin, verified here).`
        : "No policy yet: nothing can be uploaded until an admin sets how many approvals unlock a recording.",
    ),
  );
  if (!device.isAdmin) return;
  const threshold = h("input", { type: "number", min: "1", max: "255", required: true, value: String(policy?.minThreshold ?? 2) });
  const form = h("form", { class: "actions" }, field("Approvals needed", threshold), h("button", { type: "submit" }, "Sign the policy"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(form.querySelector("button"), "Signing the policy…", async () => {
      const set = await device.setPolicy(roster, Number(threshold.value));
      const holders = roster.active.length;
      const note = set.minThreshold > holders ? ` The vault has ${holders} ${holders === 1 ? "member" : "members"}: invite more before anything is uploaded.` : "";
      say(`Policy ${set.sequence}: at least ${set.minThreshold} ${set.minThreshold === 1 ? "approval unlocks" : "approvals unlock"} a recording.${note}`);
      await members(device, main);
    });
  });
  main.append(form);
}

// ---------------------------------------------------------------------------------------
// Nodes and jobs

export const nodes: Page = async (device, main) => {
  heading(main, "Nodes", "Transcription nodes receive shares only with an admin's signed approval naming their keys and model.");
  const roster = await device.roster();
  const views = await device.client.call("get", "/api/v1/vaults/{vault}/nodes", { path: { vault: device.vaultId } });
  const rows = [];
  for (const node of views) {
    let approval = "none";
    let hardwareNow = "";
    // Shown only as an admin approved it; otherwise the admin reads it on the node.
    let shown: HTMLElement | string = READ_OUT;
    if (node.approval) {
      try {
        const [verified, admin] = await roster.verifyByAdmin("node-approval", node.approval);
        hardwareNow = verified.statement.hardware;
        shown = fingerprint(await fingerprintOf(verified.statement.node));
        approval = `${verified.statement.revoked ? "revoked" : "approved"} by ${admin.name} until ${when(verified.statement.expiresAt)} — ${verified.statement.hardware}`;
      } catch (error) {
        approval = `refused: ${message(error)}`;
      }
    }
    const actions = h("div", { class: "row-actions" });
    if (device.isAdmin && node.status !== "revoked") {
      const model = h("input", { type: "text", pattern: "[0-9a-fA-F]{64}", value: node.model_sha256 ?? "", autocomplete: "off", spellcheck: "false" });
      const hardware = h("input", { type: "text", value: hardwareNow, autocomplete: "off" });
      const days = h("input", { type: "number", min: 1, max: 3650, value: 365 });
      const [readOut, typed] = readOutField(`Fingerprint of ${node.name}`, "`quorate-node status` prints it on the node");
      actions.append(
        readOut,
        field("Model SHA-256", model, "printed by `quorate-node models import` on the node"),
        field("Hardware, as you checked it", hardware),
        field("Valid for (days)", days),
        button(`${node.status === "approved" ? "Renew the approval of" : "Approve"} ${node.name}`, (event) =>
          act(event.currentTarget as HTMLButtonElement, `Signing the approval of ${node.name}…`, async () => {
            await device.approveNode(node, typed.value, model.value.trim(), hardware.value.trim(), Number(days.value));
            say(`${node.name} is approved.`);
            await nodes(device, main);
          }), "primary"),
      );
      if (node.status === "approved" && node.model_sha256) {
        actions.append(
          button(`Revoke ${node.name}`, (event) =>
            act(event.currentTarget as HTMLButtonElement, `Signing the revocation of ${node.name}…`, async () => {
              if (!window.confirm(`Revoke ${node.name}? This is final.`)) return;
              await device.revokeNode(node);
              say(`${node.name} is revoked.`);
              await nodes(device, main);
            }), "danger"),
        );
      }
    }
    rows.push([node.name, shown, node.status, approval, actions]);
  }
  main.append(table("Nodes", ["Name", "Fingerprint", "Status", "Approval (verified here)", ""], rows));
  const jobs = await device.client.call("get", "/api/v1/vaults/{vault}/jobs", { path: { vault: device.vaultId } });
  main.append(
    h("h2", {}, "Jobs"),
    table(
      "Jobs",
      ["Request", "Node", "Status", "Progress", "Updated"],
      jobs.map((job) => [
        job.request_id.slice(0, 8),
        views.find((node) => node.node_id === job.node_id)?.name ?? job.node_id.slice(0, 8),
        job.failure ? `${job.status}: ${job.failure}` : job.status,
        h("span", {}, h("progress", { max: 1000, value: job.progress_permille, "aria-label": "progress" }), ` ${(job.progress_permille / 10).toFixed(0)} % ${job.stage ?? ""}`),
        when(job.updated_at),
      ]),
    ),
  );
  if (device.isAdmin) {
    const out = h("p", { role: "status" });
    main.append(
      button("Make a node invite code", (event) =>
        act(event.currentTarget as HTMLButtonElement, "Asking for a node invite…", async () => {
          const invite = await device.client.call("post", "/api/v1/vaults/{vault}/invites", {
            path: { vault: device.vaultId },
            body: { purpose: "node", ttl_seconds: null },
          });
          fill(out, "Node invite code: ", h("code", {}, invite.code), ` (for \`quorate-node enroll\`, until ${when(invite.expires_at)})`);
        })),
      out,
    );
  }
};

// ---------------------------------------------------------------------------------------
// Recordings

export const recordings: Page = async (device, main) => {
  heading(main, "Recordings", "Titles and attendees are sealed to members and opened here; the server sees only sizes and times.");
  const roster = await device.roster();
  const path = { path: { vault: device.vaultId } };
  const [views, transcripts, released, nodeViews] = await Promise.all([
    device.client.call("get", "/api/v1/vaults/{vault}/recordings", path),
    device.client.call("get", "/api/v1/vaults/{vault}/transcripts", path),
    device.client.call("get", "/api/v1/vaults/{vault}/released", path),
    device.client.call("get", "/api/v1/vaults/{vault}/nodes", path),
  ]);
  const approved = nodeViews.filter((node) => node.status === "approved");
  // Where a released transcript opened from a row is shown.
  const reader = h("div", { "aria-live": "polite" });
  const rows = [];
  for (const view of views) {
    let title = "(refused)";
    let meeting = "—";
    let spokenIn = "";
    try {
      const manifest = await device.recordingManifest(roster, view);
      const metadata = await device.metadata(manifest);
      title = metadata?.title ?? "(details sealed before you joined)";
      meeting = when(metadata?.startedAt ?? null);
      spokenIn = metadata?.language ?? "";
    } catch (error) {
      title = `refused: ${message(error)}`;
    }
    const transcript = transcripts.find((item) => item.recording_id === view.recording_id);
    const isReleased = transcript && released.some((item) => item.transcript_id === transcript.transcript_id);
    const state = isReleased ? "released" : transcript ? "transcribed" : view.status;
    const actions = h("div", { class: "row-actions" });
    const releasedCopy = transcript && released.find((item) => item.transcript_id === transcript.transcript_id);
    if (releasedCopy) {
      const heading = title;
      actions.append(
        button("Read the minutes", (event) =>
          act(event.currentTarget as HTMLButtonElement, "Opening the released minutes…", async () => {
            const opened = await device.openReleased(roster, releasedCopy);
            reader.replaceChildren(transcriptView(heading, opened.document));
            reader.scrollIntoView();
          })),
      );
    }
    if (view.status === "complete" && !isReleased && approved.length) {
      const node = h("select", {}, approved.map((item) => h("option", { value: item.node_id }, item.name)));
      const reason = h("input", { type: "text", required: true, autocomplete: "off" });
      // The uploader's stated language by default, signed into the request.
      const language = h("input", { type: "text", autocomplete: "off", placeholder: "detected", size: "4", value: spokenIn });
      const subject = transcript
        ? ({ kind: "transcript", id: transcript.transcript_id } as const)
        : ({ kind: "recording", id: view.recording_id } as const);
      actions.append(
        field("Node", node),
        field("Reason (shown to voters)", reason),
        ...(transcript ? [] : [field("Language (fr, nl, …)", language)]),
        button(transcript ? "Ask to release the transcript" : "Ask to transcribe", (event) =>
          act(event.currentTarget as HTMLButtonElement, "Signing the request…", async () => {
            if (!reason.value.trim()) throw new Error("give a reason: voters see it");
            const spoken = language.value.trim().toLowerCase() || null;
            const created = await device.createRequest(roster, subject, node.value, reason.value.trim(), 7, spoken);
            say(`Request ${created.request_id.slice(0, 8)} is open: ${created.threshold} approvals needed.`);
            location.hash = "#/requests";
          })),
      );
    }
    rows.push([title, meeting, state, `${(view.ciphertext_len / 1024).toFixed(0)} KiB`, `${view.threshold} of ${view.shares}`, when(view.created_at), actions]);
  }
  main.append(table("Recordings", ["Title", "Meeting", "Status", "Size", "Unlock", "Uploaded", ""], rows), reader);
};

// ---------------------------------------------------------------------------------------
// Re-share: this member's part in moving every key to the current members

export const reshare: Page = async (device, main) => {
  heading(
    main,
    "Re-share",
    "After members join or leave, every recording's and transcript's key moves to the current members without anyone rebuilding it: current holders deal their shares, then each member of the new board takes a new share. Each member does their part here (or with `quorate reshare`); everything is checked in this browser first.",
  );
  const roster = await device.roster();
  const policy = await device.policy(roster);
  const items = await device.reshareWork();
  if (!items.length) {
    main.append(h("p", { class: "empty" }, "Every key's shares follow the roster: nothing to re-share."));
    return;
  }
  const rows = items.map((item) => [
    item.kind,
    h("code", {}, item.subject_id.slice(0, 8)),
    item.open ? `${item.open.deals.length} of ${item.open.needed} deals, ${item.open.accepted.length} new shares in` : "not started",
  ]);
  main.append(table("Keys to re-share", ["Key of", "ID", "State"], rows));
  const progress = h("progress", { max: String(items.length), value: "0", "aria-label": "Keys done" });
  const results = h("ul", { class: "results" });
  const run = button(`Do my part for ${items.length} ${items.length === 1 ? "key" : "keys"}`, (event) =>
    act(event.currentTarget as HTMLButtonElement, "Re-sharing…", async () => {
      const counts = { dealt: 0, accepted: 0, completed: 0, waiting: 0 };
      const refused: string[] = [];
      for (const [done, item] of items.entries()) {
        try {
          const outcome = await device.reshareStep(roster, policy.minThreshold, item);
          counts[outcome] += 1;
          if (outcome === "completed") counts.accepted += 1;
        } catch (error) {
          refused.push(`${item.kind} ${item.subject_id.slice(0, 8)}: ${message(error)}`);
          results.append(h("li", {}, refused[refused.length - 1]!));
        }
        progress.value = done + 1;
      }
      say(
        `Dealt your share of ${counts.dealt}, took your new share of ${counts.accepted} (${counts.completed} now held by the current members only); ${counts.waiting} wait for other members.` +
          (refused.length ? ` ${refused.length} refused (listed below): tell the others and an admin.` : ""),
      );
    }));
  main.append(h("div", { class: "actions" }, run, progress), results);
};

// ---------------------------------------------------------------------------------------
// Audit log

export const audit: Page = async (device, main) => {
  heading(main, "Audit log", "Every change the server made, in a hash chain this browser recomputes, with every signed statement checked.");
  const result = h("p", { role: "status", class: "verified" });
  main.append(result);
  const { entries, head, roster } = await device.verifyAudit((count) => fill(result, `Verifying… ${count} entries checked`));
  fill(result, `Verified: ${entries.length} entries, every hash, signature and signer, and the head this browser saw before. Head ${head.slice(0, 16)}…`);
  // Members are named from the verified roster (entries name them by fingerprint).
  const people = [...roster.active, ...roster.recorders, ...roster.removed];
  const named = (text: string) =>
    (/^[0-9a-f]{16,64}$/.test(text) && people.find((member) => member.fingerprint.startsWith(text))?.name) || text.slice(0, 36);
  main.append(
    table(
      "Audit entries (newest first)",
      ["#", "Time", "Actor", "Action", "Subject"],
      entries
        .slice(-200)
        .reverse()
        .map((entry) => [String(entry.seq), when(entry.time), named(entry.actor), entry.action, named(entry.subject)]),
    ),
  );
};

// ---------------------------------------------------------------------------------------
// Search

/** `text` with the words whose normal form is in `words` marked. */
export function highlight(text: string, words: Set<string>): (Node | string)[] {
  const parts = text.split(/([\p{Alphabetic}\p{N}\p{M}]+)/u);
  return parts.map((part, i) => (i % 2 === 1 && normalise(part).some((word) => words.has(word)) ? h("mark", {}, part) : part));
}

/** "Name: " before a segment's words, when the recording named who said them. */
function said(segment: TranscriptDocument["segments"][number]): Node | null {
  return segment.speaker ? h("strong", { class: "speaker" }, `${segment.speaker}: `) : null;
}

/** A released transcript, opened in this page: every segment, its time and its speaker. */
function transcriptView(title: string, document: TranscriptDocument): HTMLElement {
  return h(
    "section",
    { class: "transcript", "aria-label": `Minutes of ${title}` },
    h("h2", {}, `Minutes of ${title}`),
    h("p", { class: "meta" }, `Language: ${document.language} · opened and checked in this page`),
    h(
      "ol",
      {},
      document.segments.map((segment) =>
        h("li", {}, h("span", { class: "time" }, `${timestamp(segment.start)} `), said(segment), segment.text.trim()),
      ),
    ),
  );
}

function timestamp(seconds: number): string {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

export const search: Page = async (device, main) => {
  heading(main, "Search minutes", "Your words are turned into keyed tokens in this browser; the server ranks tokens and never sees a word. Snippets come from the released copies, opened here.");
  const query = h("input", { type: "search", required: true, autocomplete: "off", name: "q" });
  const results = h("div", { "aria-live": "polite" });
  const form = h("form", { role: "search", class: "search" }, field("Words to find", query), h("button", { type: "submit", class: "primary" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(form.querySelector("button"), "Blinding your words and searching…", () => runSearch(device, query.value, results));
  });
  main.append(form, results);
  query.focus();
};

async function runSearch(device: Device, text: string, results: HTMLElement): Promise<void> {
  const words = [...new Set(normalise(text))];
  if (!words.length) throw new Error("type at least one word");
  if (words.length > 32) throw new Error("at most 32 different words");
  const roster = await device.roster();
  const keys = await device.searchKeys(roster);
  if (!keys) throw new Error("you have no copy of the vault's newest search key yet: an admin's device shares it (`quorate share-keys`)");
  const stale =
    keys.staleSince === null
      ? null
      : h("p", { class: "refused" }, "A member who left holds the vault's search key, so with the server they could read this query's words: an admin replaces it with `quorate search-key rotate`.");
  const tokensUnder = async (secret: Uint8Array<ArrayBuffer>) => {
    const key = await importSearchKey(secret);
    secret.fill(0);
    return Promise.all(words.map((word) => token(key, word)));
  };
  const tokens = await tokensUnder(keys.current);
  // While released minutes are re-indexed under a new key, each word goes under both.
  const previous = keys.previous ? await tokensUnder(keys.previous) : null;
  const found = await device.client.call("post", "/api/v1/vaults/{vault}/search", {
    path: { vault: device.vaultId },
    body: { tokens, previous_tokens: previous, limit: 20, offset: 0 },
  });
  if (!found.hits.length) {
    fill(results, stale, h("p", {}, "No released minutes match."));
    return;
  }
  const released = await device.client.call("get", "/api/v1/vaults/{vault}/released", { path: { vault: device.vaultId } });
  const recordingViews = await device.client.call("get", "/api/v1/vaults/{vault}/recordings", { path: { vault: device.vaultId } });
  const wanted = new Set(words);
  const items = [];
  for (const hit of found.hits) {
    const view = released.find((item) => item.transcript_id === hit.transcript_id);
    const recording = recordingViews.find((item) => item.recording_id === hit.recording_id);
    let title = "(untitled)";
    let meeting = "";
    let snippets: Node[] = [];
    try {
      if (!view) throw new Error("the server lists no released copy for this hit");
      const opened = await device.openReleased(roster, view);
      if (recording) {
        const metadata = await device.metadata(await device.recordingManifest(roster, recording));
        title = metadata?.title ?? title;
        meeting = when(metadata?.startedAt ?? null);
      }
      snippets = hit.segments.map((index: number) => {
        const segment = opened.document.segments[index];
        return segment
          ? h("li", {}, h("span", { class: "time" }, `${timestamp(segment.start)} `), said(segment), ...highlight(segment.text.trim(), wanted))
          : h("li", {}, "(a segment the copy does not have)");
      });
    } catch (error) {
      snippets = [h("li", { class: "refused" }, `Could not open this transcript here: ${message(error)}`)];
    }
    items.push(
      h(
        "li",
        { class: "hit" },
        h("h2", {}, title),
        h("p", { class: "meta" }, `${meeting} · score ${hit.score.toFixed(2)}`),
        h("ul", { class: "snippets" }, snippets),
      ),
    );
  }
  fill(results, stale, h("p", {}, `${found.total} released ${found.total === 1 ? "meeting matches" : "meetings match"}.`), h("ol", { class: "hits" }, items));
}

export type { Schemas };
