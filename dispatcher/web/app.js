// fusebox web console (issue 12). Plain JavaScript, no framework, no build
// step. It exchanges the token that `fuseboxctl web login` printed (in
// the address's #fragment) once for a fresh one (POST /api/session),
// keeps that in sessionStorage, never in a cookie, so no other site can
// act with it, polls GET /api/overview with it, sends operator
// actions to POST /api/action, and ends the session on Sign out
// (DELETE /api/session). The engine answers both
// as the token's principal: its roles, its organisations, its audit
// trail. Text from the engine is always set as textContent, never HTML.
"use strict";

const POLL_MS = 3000;
const KEY = "fbx_token";
let token = null;
let exchangeWhy = ""; // a login address this tab could not take
let timer = null;
let pending = null; // the action waiting for its note
let someOrg = undefined; // an organisation in view: a global action names one
let adminOrg = ""; // fuseboxd --admin-org: the only one a global action may name
let roles = []; // the session principal's roles, from /api/overview
let allOrgs = false; // its scope is every organisation
let me = ""; // its name

// refusal - why this session may not take `act` (the roles of
// docs/security.md, as dispatcher/auth.c checks them), or "" if it may.
// Only to grey out a button: the engine checks every action again and
// audits a refusal.
const ACTION_ROLE = { trip: "breaker", reset: "breaker", approve: "approver",
  pause: "operator", resume: "operator", advance: "approver" };
const NOTE_MAX_BYTES = 159; // the engine's limit, in UTF-8 bytes
function refusal(act, global) {
  if (global)
    return roles.includes("admin") && allOrgs ? "" :
      "a global breaker action needs the admin role for every organisation";
  const need = ACTION_ROLE[act];
  return roles.includes(need) ? "" :
    "needs the " + need + " role; this session has " + (roles.join(", ") || "none");
}

function $(id) { return document.getElementById(id); }

// notTaken - the note shown when an address opened in a signed-in tab
// could not be exchanged (why: the engine's reason), or ""
function notTaken(why) {
  return why ? "The address just opened was not taken (" + why +
    "); this tab stays signed in with its own session." : "";
}

// takeToken - a login address's token is exchanged, once, for a fresh
// one that only this tab holds: the browser keeps the address in its
// history and session files, where the old token is then dead
async function takeToken() {
  const m = /(?:^#|&)token=([0-9a-f]{64})(?:&|$)/.exec(location.hash);
  if (m) {
    // out of the address bar and the tab's history
    history.replaceState(null, "", location.pathname);
    let r;
    try {
      const f = await fetch("/api/session", { method: "POST", cache: "no-store",
        headers: { "Authorization": "Bearer " + m[1] } });
      r = { status: f.status, body: await f.json() };
    } catch (e) {
      r = { status: 0, body: { message: "not connected: " + e } };
    }
    if (r.status === 200 && r.body.token) {
      sessionStorage.setItem(KEY, r.body.token);
    } else {
      // a tab signed in keeps its session (an address opened again
      // from the history, a reload that cut the exchange short)
      const kept = sessionStorage.getItem(KEY);
      return { token: kept, why: (r.body && r.body.message) || "" };
    }
  }
  return { token: sessionStorage.getItem(KEY), why: "" };
}

function signedOut(why) {
  sessionStorage.removeItem(KEY);
  token = null;
  if (timer) clearTimeout(timer);
  $("signout").hidden = true;
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-why").textContent = why || "";
  $("who").textContent = "not signed in";
  $("updated").textContent = "";
  live(false, "signed out");
}

function live(on, text) {
  const l = $("live");
  l.className = "live " + (on ? "on" : "off");
  l.textContent = text;
}

// signOut - the session ends on the server first: a token left in
// this tab's storage by a failed request would still be live
async function signOut() {
  if (!token) return;
  const b = $("signout");
  b.disabled = true;
  let r;
  try {
    r = await api("DELETE", "/api/session");
  } catch (e) {
    r = { status: 0, body: { message: "not connected: " + e } };
  }
  b.disabled = false;
  if (r.status === 200 || r.status === 401) {
    signedOut("Signed out: this tab's session has ended.");
    return;
  }
  live(false, "not signed out: " + (r.body.message || r.status) +
    "; try again");
}

async function api(method, path, body) {
  const opts = { method, headers: { "Authorization": "Bearer " + token },
                 cache: "no-store" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let j = null;
  try { j = await r.json(); } catch (e) { j = { error: "HTTP", message: r.statusText }; }
  return { status: r.status, body: j };
}

function when(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function ago(ms, now) {
  if (!ms) return "";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return s + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, cls) {
  const tr = el("tr", null, cls);
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el("td", c));
  }
  return tr;
}

function fill(id, rows) {
  const tb = $(id).querySelector("tbody");
  tb.replaceChildren(...rows);
  const empty = $(id + "-empty");
  if (empty) empty.hidden = rows.length > 0;
  $(id).hidden = rows.length === 0 && !!empty;
}

function button(label, fn, cls) {
  const b = el("button", label, cls);
  b.type = "button";
  b.addEventListener("click", fn);
  return b;
}

// actButton - a button that asks for the note of action `body`; greyed
// out, with the reason as its tooltip, where the session may not take it
// (also `mine`: an approval of the session's own submit)
function actButton(label, title, what, body, cls, mine) {
  const b = button(label, () => ask(title, what, body), cls);
  const why = mine ? "you submitted it: a different approver must approve it" :
    refusal(body.action, body.global);
  if (why) { b.disabled = true; b.title = why; }
  return b;
}

// advanceButton - a rollout planned with --approve-stages waits for an
// approver before its next group (fuseboxctl rollout approve)
function advanceButton(r) {
  return actButton("Approve next group…", "Approve the next group of rollout " + r.id,
    "Let the staged rollout of command " + r.id + " in " + r.org +
    " go on to its next group (" + r.note + ").",
    { action: "advance", org: r.org, command_id: r.id });
}

function pct(n, d) { return d ? (100 * n / d).toFixed(1) + "%" : "–"; }

// ask - show the action panel: what is about to happen, a note, confirm
function ask(title, what, body) {
  pending = body;
  $("action").hidden = false;
  $("action-title").textContent = title;
  $("action-what").textContent = what;
  $("action-result").textContent = "";
  $("action-note").value = "";
  $("action-note").focus();
}

async function confirmAction() {
  // one request per confirmation: Enter pressed again while it is on
  // its way sends nothing more
  if (!pending || $("action-go").disabled) return;
  const note = $("action-note").value.trim();
  if (!note) {
    $("action-result").textContent = "A note is required: say why.";
    return;
  }
  const nb = new TextEncoder().encode(note).length;
  if (nb > NOTE_MAX_BYTES) {
    $("action-result").textContent = "The note is " + nb + " bytes; at most " +
      NOTE_MAX_BYTES + " (a letter outside ASCII takes 2 to 4): shorten it.";
    return;
  }
  const body = Object.assign({}, pending, { note });
  $("action-go").disabled = true;
  try {
    const r = await api("POST", "/api/action", body);
    if (r.status === 401) { signedOut(r.body.message); return; }
    if (r.status === 200) {
      $("action-result").textContent = "Done: " + body.action +
        (body.action === "reset" && r.body.released !== undefined ?
         " (released " + r.body.released +
         ", discarded " + r.body.discarded +
         (r.body.held_again ? ", held again " + r.body.held_again + " by " +
          (body.global ? "their organisation's breaker, still open"
                       : "the global breaker of the reason, still open") :
          "") + ")" : "") + ". Audited." +
        (r.body.cert_due ? " Warning: certificate " + r.body.cert_due +
         " is still due, so the engine opens this breaker again within a" +
         " second. Renew or remove the certificate (fuseboxctl cert) to" +
         " keep it closed." : "");
      pending = null;
      /* a warning stays until the operator closes the dialog */
      if (!r.body.cert_due)
        setTimeout(() => { if (!pending) $("action").hidden = true; }, 1500);
      poll(true);
    } else {
      $("action-result").textContent = "Refused (" + r.status + " " +
        r.body.error + "): " + r.body.message;
    }
  } catch (e) {
    $("action-result").textContent = "Not sent: " + e;
  } finally {
    $("action-go").disabled = false;
  }
}

function render(o) {
  const now = o.now_ms;
  const who = o.who;
  roles = who.roles;
  me = who.principal;
  allOrgs = who.orgs === "*";
  // greyed out when neither an organisation's trip nor a global one
  // is allowed; the tooltip names the least it takes (the breaker role)
  const orgWhy = refusal("trip", false);
  const tripWhy = orgWhy && refusal("trip", true) ? orgWhy : "";
  $("trip-go").disabled = !!tripWhy;
  $("trip-go").title = tripWhy;
  $("who").textContent = who.principal + " (" + who.roles.join(", ") + "; " +
    (who.orgs === "*" ? "every organisation" : who.orgs.join(", ")) +
    ") until " + when(who.expires_ms);
  $("updated").textContent = "updated " + when(now);
  if (o.errors && o.errors.length) {
    $("errors").hidden = false;
    $("errors").textContent = "Some figures are missing: " + o.errors.join("; ");
  } else {
    $("errors").hidden = true;
  }
  const notes = (o.notes || []).concat(exchangeWhy ? [exchangeWhy] : []);
  $("notes").hidden = notes.length === 0;
  $("notes").textContent = notes.join("; ");
  const h = o.needs_human;
  // figures some organisation's request could not read: unknown, not 0
  const missing = h.missing || [];
  const eng = o.engine;
  $("degraded").hidden = !(eng && eng.degraded);
  someOrg = o.top_orgs.length ? o.top_orgs[0].org : undefined;
  adminOrg = o.engine && o.engine.admin_org ? o.engine.admin_org : "";

  // audit chain
  const a = h.audit;
  const ac = $("audit");
  ac.className = a.state === "intact" ? "good" : a.state === "broken" ? "bad" : "warn";
  ac.textContent = a.state === "intact" ? "intact up to record " + a.verified_seq :
    a.state === "broken" ? "BROKEN at record " + a.broken_at + ": " + a.why :
    a.state === "checking" ? "checked up to " + a.verified_seq + " of " + a.head_seq :
    "unknown: " + (a.why || "");
  $("audit-card").classList.toggle("alert", a.state === "broken");

  const open = h.breakers.filter(b => b.state === "open");
  // the lists hold the first ones; the totals are the breakers' counts
  // (for a principal of some organisations, their share)
  const heldTotal = Math.max(h.held_total || 0, h.held.length);
  const settlingTotal = Math.max(h.settling_total || 0, h.settling.length);
  const counts = { "n-open": open.length, "n-held": heldTotal,
    "n-settling": settlingTotal, "n-paused": h.paused_rollouts.length,
    "n-approvals": h.approvals.length };
  const unknown = { "n-open": missing.includes("breakers"),
    "n-held": missing.includes("breakers") || missing.includes("held"),
    "n-settling": missing.includes("breakers") || missing.includes("settling"),
    "n-paused": missing.includes("rollouts"), "n-approvals": false };
  for (const k in counts) {
    $(k).textContent = unknown[k] ? "? (" + counts[k] + " read)" : counts[k];
    $(k).parentElement.classList.toggle("alert", counts[k] > 0 || unknown[k]);
  }
  $("breakers-empty").textContent = missing.includes("breakers") ?
    "Breakers could not be read for some organisation (see the red line at the top): " +
    "open ones may be missing here; fuseboxctl -o ORG breaker status" :
    "No breaker is open or holding.";

  // open or holding first (global first); breakers that only have
  // commands in their settle window on one line below
  const rank = b => (b.state === "open" ? 0 : 2) + (b.org === "*" ? 0 : 1);
  const shown = h.breakers.filter(b => b.state === "open" || b.held > 0)
    .sort((x, y) => rank(x) - rank(y) || y.held - x.held);
  const onlySettling = h.breakers.filter(b => !(b.state === "open" || b.held > 0));
  $("breakers-settling").textContent = onlySettling.length === 0 ? "" :
    onlySettling.length + " closed breaker(s) with commands in their settle window: " +
    onlySettling.slice(0, 12).map(b => (b.org === "*" ? "global" : b.org) + " (" +
      b.settling + ")").join(", ") + (onlySettling.length > 12 ? ", ..." : "");
  fill("breakers", shown.map(b => {
    const name = (b.org === "*" ? "global" : b.org) + " / " + (b.reason || "(no reason)");
    const acts = el("span");
    if (b.state === "open" || b.held > 0) {
      /* a release passes the other breaker of the reason: the global
         one holds an organisation's again while it is open, and the
         organisation's holds the global one's */
      const globalOpen = b.org !== "*" && h.breakers.some(g => g.org === "*" &&
        g.reason === b.reason && g.state === "open" && !g.shadow);
      acts.appendChild(actButton("Reset, release…", "Reset breaker " + name,
        "Close it and release the " + b.held + (b.partial ? "+" : "") +
        " command(s) it holds" + (b.partial ? " (this node's count; every node releases its own)" : "") +
        ", in staged waves " +
        "(each passes the limits, and " + (b.org === "*" ?
          "its organisation's breaker, which holds it again while that is open)." :
          "the global breaker of the reason, which holds it again while that is open).") +
        (globalOpen ? " The global breaker for " + b.reason + " is OPEN now: they will " +
          "be held again by it, and go out only when it is reset with release." : ""),
        { action: "reset", org: b.org === "*" ? adminOrg || someOrg : b.org, reason: b.reason,
          global: b.org === "*", discard: false }));
      acts.appendChild(actButton("Reset, discard…", "Reset breaker " + name,
        "Close it and DISCARD the " + b.held + (b.partial ? "+" : "") + " command(s) it holds" +
        (b.partial ? " (this node's count; every node discards its own)." : "."),
        { action: "reset", org: b.org === "*" ? adminOrg || someOrg : b.org, reason: b.reason,
          global: b.org === "*", discard: true }, "danger"));
    }
    const tr = row([name, b.state + (b.manual ? " (by hand)" : "") +
      (b.shadow ? (b.state === "open" ? ", shadow: holds nothing" : " (shadow)") : ""),
      // a global breaker on a node of a cluster: its counts are this
      // node's organisations' (the others' are on their nodes' pages)
      b.partial ? b.held + "+ (this node's organisations; the other nodes' on their pages)" : b.held,
      b.partial ? b.settling + "+" : b.settling,
      b.org === "*" ? b.window_count + " orgs / " + b.global_orgs : b.window_count + " / " + b.allowance,
      b.org === "*" ? "every" : b.fleet,
      b.tripped_ms ? ago(b.tripped_ms, now) + " by " + b.tripped_by : "",
      b.note, acts], b.state === "open" ? "open" : "");
    tr.children[1].className = "state";
    tr.dataset.breaker = b.org + "/" + b.reason;
    return tr;
  }));

  const HELD_ROWS = 10;
  fill("held", h.held.slice(0, HELD_ROWS).map(c => row([c.id, c.org, c.type, c.reason,
    c.actor, c.held_by, ago(c.created_ms, now)])));
  $("held-more").textContent = heldTotal > Math.min(HELD_ROWS, h.held.length) ?
    "The first " + Math.min(HELD_ROWS, h.held.length) + " of " + heldTotal +
    " held commands; fuseboxctl -o ORG held lists them all." : "";
  fill("settling", h.settling.slice(0, HELD_ROWS).map(c => row([c.id, c.org, c.type,
    c.reason, when(c.settle_until_ms)])));
  $("settling-more").textContent = settlingTotal > Math.min(HELD_ROWS, h.settling.length) ?
    "The first " + Math.min(HELD_ROWS, h.settling.length) + " of " + settlingTotal +
    " settling commands; fuseboxctl -o ORG held --settling lists them all." : "";
  fill("paused", h.paused_rollouts.map(r => row([r.id, r.org, r.type, r.state, r.note,
    r.state === "awaiting_approval" ? advanceButton(r) :
    actButton("Resume…", "Resume rollout " + r.id,
      "Resume the staged rollout of command " + r.id + " in " + r.org + ".",
      { action: "resume", org: r.org, command_id: r.id })])));
  fill("approvals", h.approvals.map(p => row([p.token, p.org, p.submitter, p.type,
    p.devices + " / " + p.limit, ago(p.at_ms, now),
    actButton("Approve…", "Approve " + p.token,
      p.submitter + "'s " + p.type + " of " + p.devices + " devices, over the limit of " +
      p.limit + ", may then be resubmitted once.",
      { action: "approve", org: p.org, token: p.token }, undefined,
      p.submitter === me)])));

  $("approvals-age").textContent =
    "(submits refused over a blast-radius limit in the last 24 h whose token nobody approved)";

  // funnel
  const f = o.funnel;
  $("funnel-scope").textContent = "Deliveries of " + f.scope + ".";
  const stages = [["queued", f.queued], ["in flight", f.in_flight],
    ["pending offline", f.pending_offline], ["succeeded", f.succeeded],
    ["failed", f.failed], ["expired", f.expired]];
  const max = Math.max(1, ...stages.map(s => s[1]));
  $("funnel").replaceChildren(...stages.map(([name, n]) => {
    const d = el("div", null, "stage " + name.split(" ")[0]);
    d.appendChild(el("div", name));
    d.appendChild(el("div", n, "n"));
    const bar = el("div", null, "bar");
    bar.style.width = (100 * n / max).toFixed(1) + "%";
    d.appendChild(bar);
    return d;
  }));
  const e = o.engine;
  $("engine").textContent = e ? "Engine " + e.version + ", up " +
    Math.round(e.uptime_ms / 1000) + " s: " + e.commands_active + " active commands; " +
    e.queued + " queued, " + e.inflight + " in flight, " + e.pending +
    " pending offline (every organisation)" +
    (e.admin_org ? "; global controls act as organisation " + e.admin_org + " (--admin-org)" : "") +
    (e.degraded ? "; DEGRADED: the store cannot be written" : "") : "";

  fill("rollouts", o.rollouts.map(r => {
    const done = r.succeeded + r.failed;
    const acts = el("span");
    if (r.state === "running" || r.state === "baking")
      acts.appendChild(actButton("Pause…", "Pause rollout " + r.id,
        "Pause the staged rollout of command " + r.id + " in " + r.org + ".",
        { action: "pause", org: r.org, command_id: r.id }));
    if (r.state === "paused")
      acts.appendChild(actButton("Resume…", "Resume rollout " + r.id,
        "Resume the staged rollout of command " + r.id + " in " + r.org + ".",
        { action: "resume", org: r.org, command_id: r.id }));
    if (r.state === "awaiting_approval")
      acts.appendChild(advanceButton(r));
    const fail = el("span", pct(r.failed, done) + " (pauses at " +
      (r.failure_ppm / 10000).toFixed(1) + "% after " + r.min_results + ")");
    if (r.failure_ppm && done && r.failed * 1e6 >= r.failure_ppm * done) fail.className = "bad";
    return row([r.id, r.org, r.type, r.state, r.wave ? r.wave + " (" + r.wave_size + ")" : "0 (none released yet)",
      r.released + " / " + r.deliveries,
      pct(r.succeeded, done) + " (advances at " + (r.success_ppm / 10000).toFixed(1) + "%)",
      fail, acts]);
  }));

  const g = o.gateways;
  $("gw-count").textContent = g.connected < 0 ? "unknown" :
    g.connected + " gateway(s) connected" + (g.list ? "" :
    " (the list is for principals of every organisation)");
  fill("gateways", (g.list || []).map(x => row([x.id, x.window, x.inflight, x.bytes])));
  $("gateways").hidden = !g.list || g.list.length === 0;

  // a figure the engine could not read is null: "?", never 0; another
  // node's organisation names that node (its page shows the figures)
  const q = v => v === null || v === undefined ? "?" : v;
  fill("orgs", o.top_orgs.map(x => row([x.node ? x.org + " (node " + x.node + ")" : x.org,
    x.devices, q(x.held), q(x.window_count), q(x.open_breakers), q(x.settling),
    q(x.recent_commands) + (x.recent_commands_more ? "+ (more: fuseboxctl summary)" : "")],
    x.open_breakers ? "open" : "")));

  renderFleet(o.fleet_health);
}

function hours(m) {
  if (m % 1440 === 0) return (m / 1440) + " d";
  if (m % 60 === 0) return (m / 60) + " h";
  return m + " min";
}

// renderFleet - check-in health and outcomes (fleet.c, outcomes.c)
function renderFleet(fh) {
  if (!fh || !fh.available) return;
  const alerts = fh.alerts || [];
  $("n-fleet").textContent = alerts.length;
  $("n-fleet").parentElement.className = "card" + (alerts.length ? " alert" : "");
  fill("fleet-alerts", alerts.map(a => row([a.org,
    a.kind === "devices_stale" ? "devices without a check-in for " + hours(a.stale_minutes) + " or longer"
                               : a.type + ": none succeeded this hour (silent)",
    a.count], "open")));
  const w = fh.fleet_wide;
  fill("fleet-wide", w ? [row(["as of " + when(w.as_of_ms)].concat(w.offline_hours))] : []);
  $("fleet-wide").hidden = !w;
  const orgs = (fh.orgs || []).filter(f => f.as_of_ms);
  fill("fleet-orgs", orgs.map(f => {
    const rules = f.rules.map(r => r.stale + " / " + hours(r.stale_minutes)).join(", ") || "none";
    const os = f.os_versions.map(v => (v.version || "(none)") + " " + v.count).join(", ");
    return row([f.org, f.devices].concat(f.offline_hours, [rules, os]),
      f.rules.some(r => r.stale > 0) ? "open" : "");
  }));
  const outs = [];
  for (const f of fh.orgs || [])
    for (const t of f.outcomes)
      outs.push(row([f.org, t.type,
        t.ok_hour + " / " + t.failed_hour + " / " + t.expired_hour,
        t.ok_day + " / " + t.failed_day + " / " + t.expired_day,
        t.silent ? "SILENT" : ""], t.silent ? "open" : ""));
  fill("outcomes", outs);
}

async function poll(once) {
  if (timer && !once) clearTimeout(timer);
  if (!token) return;
  $("signout").hidden = false; // a token to end, even one refused (403)
  const asked = token;
  try {
    const r = await api("GET", "/api/overview");
    // signed out (or signed in anew) meanwhile: this answer is stale
    if (token !== asked) return;
    if (r.status === 401) { signedOut(r.body.message); return; }
    if (r.status === 200) {
      $("main").hidden = false;
      $("login").hidden = true;
      render(r.body);
      live(true, "live");
    } else if (r.status === 403) {
      $("main").hidden = true;
      $("login").hidden = false;
      $("login-why").textContent = "Refused: " + r.body.message;
      live(false, "refused");
      return;
    } else {
      live(false, r.status + " " + r.body.message);
    }
  } catch (e) {
    if (token !== asked) return;
    live(false, "not connected");
  }
  if (!once) timer = setTimeout(poll, POLL_MS);
}

function tripForm(ev) {
  ev.preventDefault();
  const org = $("trip-org").value.trim();
  const reason = $("trip-reason").value.trim();
  const global = $("trip-global").checked;
  if (!org && !global) {
    $("trip-msg").textContent = "Name the organisation, or tick global.";
    $("trip-org").focus();
    return;
  }
  if (!reason) {
    $("trip-msg").textContent = "Name the reason.";
    $("trip-reason").focus();
    return;
  }
  const why = refusal("trip", global);
  if (why) {
    $("trip-msg").textContent = "Not for this session: " + why + ".";
    return;
  }
  $("trip-msg").textContent = "";
  ask("Trip breaker " + (global ? "global" : org) + " / " + reason,
    "Open it by hand: automatic lock-type commands of this reason are held (never dropped) until a reset.",
    { action: "trip", org: global ? adminOrg || org || someOrg : org, reason, global });
}

document.addEventListener("DOMContentLoaded", () => {
  $("action-go").addEventListener("click", confirmAction);
  $("action-cancel").addEventListener("click", () => { pending = null; $("action").hidden = true; });
  $("action-note").addEventListener("keydown", ev => { if (ev.key === "Enter") confirmAction(); });
  $("trip").addEventListener("submit", tripForm);
  $("signout").addEventListener("click", signOut);
  // a new login address pasted into this tab signs it in at once
  window.addEventListener("hashchange", async () => {
    if (!/token=/.test(location.hash)) return;
    const t = await takeToken();
    if (!t.token) { signedOut(t.why); return; }
    exchangeWhy = notTaken(t.why);
    if (t.token !== token) { token = t.token; poll(false); }
    else poll(true);
  });
  takeToken().then(t => {
    token = t.token;
    if (!token) { signedOut(t.why); return; }
    exchangeWhy = notTaken(t.why);
    poll(false);
  });
});
