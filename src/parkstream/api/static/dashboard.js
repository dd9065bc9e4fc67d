// The live lot: bays coloured as their lights, explanations, utilization and counters.
// The API key comes from the URL fragment (#key=...), which browsers never send to a server;
// every call sends it as X-API-Key. Live updates are server-sent events read with fetch(),
// since EventSource cannot send headers.
"use strict";

// #key=<API key>[&bay=<space id>]: the bay's explanation opens with the page.
const fragment = new URLSearchParams(location.hash.slice(1));
const key = fragment.get("key");
const bays = new Map(); // space_id -> bay
let selected = fragment.get("bay");

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

class HttpError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path) {
  const response = await fetch(path, { headers: { "X-API-Key": key }, cache: "no-store" });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new HttpError(response.status, detail);
  }
  return response.json();
}

function showError(text) {
  const box = $("error");
  box.hidden = !text;
  box.textContent = text || "";
}

// --- time ---------------------------------------------------------------------------------

function ago(iso) {
  if (!iso) return "–";
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const span = Math.abs(seconds);
  const text = span < 60 ? `${span} s` : span < 3600 ? `${Math.round(span / 60)} min`
    : span < 172800 ? `${Math.round(span / 3600)} h` : `${Math.round(span / 86400)} d`;
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "medium", hourCycle: "h23" }) : "–";
}

// --- the lot ------------------------------------------------------------------------------

function ink(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#111" : "#fff";
}

function bayCell(bay) {
  const cell = el("button", { class: "bay", type: "button", "data-space-id": bay.space_id },
    el("span", { class: "code" }), el("span", { class: "state" }));
  cell.addEventListener("click", () => explain(bay.space_id));
  return cell;
}

function paint(cell, bay) {
  const light = bay.light;
  const shows = light.shows && light.shows.colour !== "#000000" ? light.shows : null;
  cell.querySelector(".code").textContent = bay.code || bay.space_id;
  cell.querySelector(".state").textContent = (bay.state || "no state").replaceAll("_", " ");
  cell.dataset.state = bay.state || "";
  cell.dataset.lit = shows ? "true" : "false";
  cell.dataset.colour = shows ? shows.colour : "";
  cell.dataset.pending = light.pending ? "true" : "false";
  cell.dataset.blink = shows && shows.blink ? "true" : "false";
  cell.style.setProperty("--shows", shows ? shows.colour : "");
  cell.style.setProperty("--ink", shows ? ink(shows.colour) : "");
  cell.style.setProperty("--wants", light.wants ? light.wants.colour : "#fff");
  cell.setAttribute("aria-pressed", selected === bay.space_id ? "true" : "false");
  const wants = light.pending && light.wants ? `; asked to show ${light.wants.colour}` : "";
  cell.title = `${bay.name || bay.space_id}: ${bay.state || "no state yet"}` +
    ` (${bay.layer || "–"}), light ${shows ? shows.colour : "not confirmed"}${wants}`;
}

function siteBox(siteId) {
  const id = `site-${siteId}`;
  let box = document.getElementById(id);
  if (!box) {
    box = el("div", { class: "site", id }, el("h2", { text: siteId }), el("div", { class: "bays" }));
    $("sites").append(box);
  }
  return box.querySelector(".bays");
}

function render(changed, removed = []) {
  for (const id of removed) {
    bays.delete(id);
    document.querySelector(`.bay[data-space-id="${CSS.escape(id)}"]`)?.remove();
  }
  for (const bay of changed) {
    bays.set(bay.space_id, bay);
    let cell = document.querySelector(`.bay[data-space-id="${CSS.escape(bay.space_id)}"]`);
    if (!cell) {
      cell = bayCell(bay);
      siteBox(bay.site_id || "(no site)").append(cell);
    }
    paint(cell, bay);
  }
  $("c-bays").textContent = String(bays.size);
  legend();
  if (selected && changed.some((b) => b.space_id === selected)) explain(selected, false);
}

function legend() {
  const seen = new Map();
  for (const bay of bays.values()) {
    const wants = bay.light.wants;
    if (wants && bay.light.wants_for_state) seen.set(bay.light.wants_for_state, wants.colour);
  }
  const box = $("legend");
  box.replaceChildren();
  for (const [state, colour] of [...seen].sort()) {
    const item = el("span", { text: state.replaceAll("_", " ").toLowerCase() });
    item.style.setProperty("--swatch", colour);
    box.append(item);
  }
  box.append(el("span", { class: "pending", text: "dashed: colour sent, not yet confirmed" }));
  box.append(el("span", { class: "dark", text: "hatched: no colour confirmed" }));
}

// --- a bay's explanation ------------------------------------------------------------------

function row(list, term, ...value) {
  list.append(el("dt", { text: term }), el("dd", {}, ...value));
}

function swatch(light) {
  if (!light) return "none";
  const box = el("span", { class: "swatch" });
  box.style.setProperty("background", light.colour);
  return el("span", {}, box, `${light.colour}${light.blink ? " blinking" : ""}`);
}

async function explain(spaceId, scroll = true) {
  selected = spaceId;
  fragment.set("bay", spaceId);
  history.replaceState(null, "", `#${fragment}`);
  for (const cell of document.querySelectorAll(".bay")) {
    cell.setAttribute("aria-pressed", cell.dataset.spaceId === spaceId ? "true" : "false");
  }
  let bay;
  try {
    bay = await api(`/dashboard/bays/${encodeURIComponent(spaceId)}`);
  } catch (error) {
    $("explain").replaceChildren(el("p", { class: "muted", text: `Could not load ${spaceId}: ${error.message}` }));
    return;
  }
  const why = bay.explanation || {};
  const facts = el("dl");
  row(facts, "state", bay.state || "no state yet");
  row(facts, "layer", bay.layer || "–");
  row(facts, "why", bay.summary || "–");
  row(facts, "since", `${clock(bay.since)} (${ago(bay.since)})`);
  const next = bay.next_change;
  row(facts, "next change", next ? `${next.state || "?"} at ${clock(next.at)} (${ago(next.at)}): ${next.reason || ""}` : "none scheduled");
  if (why.reservation_id) row(facts, "reservation", el("code", { text: why.reservation_id }));
  row(facts, "light shows", swatch(bay.light.shows),
    bay.light.confirmed_at ? ` · ${bay.light.evidence || "confirmed"} ${ago(bay.light.confirmed_at)}` : "");
  row(facts, "light asked", swatch(bay.light.wants),
    bay.light.pending ? " · not yet confirmed" : "", bay.light.requested_at ? ` · ${ago(bay.light.requested_at)}` : "");

  const causes = el("ul");
  for (const id of why.cause_event_ids || []) causes.append(el("li", {}, el("code", { text: id })));
  if (!causes.childElementCount) causes.append(el("li", { class: "muted", text: "none recorded" }));

  const devices = el("ul");
  for (const d of bay.devices) {
    devices.append(el("li", {}, `${d.role} `, el("code", { text: d.dev_eui }),
      ` · ${d.liveness}${d.last_seen_at ? `, heard ${ago(d.last_seen_at)}` : ""}`));
  }
  if (!devices.childElementCount) devices.append(el("li", { class: "muted", text: "none assigned" }));

  const changes = el("ul");
  for (const c of bay.changes) {
    changes.append(el("li", {}, `${clock(c.at)}: ${c.from || "–"} → ${c.to} (${c.layer}) `,
      el("span", { class: "muted", text: c.summary || "" })));
  }
  if (!changes.childElementCount) changes.append(el("li", { class: "muted", text: "none yet" }));

  $("explain").replaceChildren(
    el("h2", { text: `${bay.name || bay.space_id} · ${bay.code || ""}` }),
    facts,
    el("h3", { text: "caused by events" }), causes,
    el("h3", { text: "devices" }), devices,
    el("h3", { text: "latest changes" }), changes,
  );
  if (scroll && window.innerWidth < 900) $("explain").scrollIntoView({ behavior: "smooth" });
}

// --- counters -----------------------------------------------------------------------------

const STATE_DOTS = {
  FREE: "var(--free)", OCCUPIED: "var(--occupied)", RESERVED: "var(--reserved)",
  RESERVED_SOON: "#ffff00", UNKNOWN: "var(--unknown)", OUT_OF_ORDER: "var(--unavailable)",
  MAINTENANCE: "#0000ff", BLOCKED: "#808080",
};

function showCounters(counters) {
  const states = $("c-states");
  states.replaceChildren();
  for (const [state, n] of Object.entries(counters.states).sort()) {
    const value = el("span", { class: "value", text: String(n) });
    const box = el("div", { class: "counter", "data-state": state },
      el("span", { class: "label", text: state.replaceAll("_", " ").toLowerCase() }), value);
    box.style.setProperty("--dot", STATE_DOTS[state] || "#555");
    states.append(box);
  }
  const dead = $("c-deadletters");
  dead.textContent = counters.deadletters === null ? "?" : String(counters.deadletters);
  dead.classList.toggle("warn", counters.deadletters > 0);
  const lag = $("c-lag");
  lag.textContent = counters.projector_lag === null ? "?" : String(counters.projector_lag);
  lag.classList.toggle("warn", counters.projector_lag > 100);
  lag.parentElement.title = counters.projections
    .map((p) => `${p.projection}: ${p.lag} behind, written ${ago(p.updated_at)}`).join("\n")
    || "space-events records not yet in the read model";
}

// --- utilization chart --------------------------------------------------------------------

const CLASSES = [
  ["occupied_s", "var(--occupied)", "occupied"],
  ["reserved_s", "var(--reserved)", "reserved"],
  ["free_s", "var(--free)", "free"],
  ["unavailable_s", "var(--unavailable)", "unavailable"],
  ["unknown_s", "var(--unknown)", "unknown"],
];

function chart(data) {
  const W = 960, H = 220, left = 40, right = 10, top = 18, bottom = 24;
  const plotH = H - top - bottom;
  const step = (W - left - right) / data.hours.length;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "utilization per hour" });
  for (const pct of [0, 50, 100]) {
    const y = top + plotH * (1 - pct / 100);
    root.append(svg("line", { class: "grid", x1: left, x2: W - right, y1: y, y2: y }));
    root.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, `${pct}%`));
  }
  data.hours.forEach((hour, i) => {
    const total = CLASSES.reduce((sum, [k]) => sum + hour[k], 0);
    const x = left + i * step + 2;
    const group = svg("g", { class: "hour", "data-hour": hour.hour });
    let y = top + plotH;
    const parts = [];
    for (const [k, colour, label] of CLASSES) {
      if (!total || !hour[k]) continue;
      const h = (plotH * hour[k]) / total;
      y -= h;
      group.append(svg("rect", { x, y, width: step - 4, height: h, fill: colour }));
      parts.push(`${label} ${Math.round((100 * hour[k]) / total)}%`);
    }
    const time = new Date(hour.hour).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    group.append(svg("title", {}, `${time}: ${parts.join(", ") || "no data"}; ${hour.arrivals} arrivals, ${hour.departures} departures`));
    if (hour.arrivals) group.append(svg("text", { x: x + (step - 4) / 2, y: top - 5, "text-anchor": "middle" }, String(hour.arrivals)));
    if (i % 3 === 0 || i === data.hours.length - 1) {
      group.append(svg("text", { x: x + (step - 4) / 2, y: H - 6, "text-anchor": "middle" }, time));
    }
    root.append(group);
  });
  $("chart").replaceChildren(root);
}

async function refreshChart() {
  for (;;) {
    try { chart(await api("/dashboard/utilization?hours=24")); } catch (_) { /* next round */ }
    await sleep(60000);
  }
}

// --- the live stream ----------------------------------------------------------------------

function onEvent(name, data) {
  if (name === "snapshot") {
    $("tenant").textContent = `· ${data.tenant_id}`;
    render(data.bays, [...bays.keys()].filter((id) => !data.bays.some((b) => b.space_id === id)));
  } else if (name === "bays") {
    render(data.changed, data.removed);
  } else if (name === "counters") {
    showCounters(data);
  } else if (name === "end") {
    throw new HttpError(data.status, data.detail);
  }
}

function setLive(live, text) {
  $("live").dataset.live = live ? "true" : "false";
  $("live").textContent = text;
}

async function follow() {
  for (;;) {
    try {
      const response = await fetch("/dashboard/stream", {
        headers: { "X-API-Key": key, Accept: "text/event-stream" }, cache: "no-store",
      });
      if (!response.ok) {
        let detail = response.statusText;
        try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
        throw new HttpError(response.status, detail);
      }
      setLive(true, "live");
      showError("");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          }
          if (data.length) onEvent(name, JSON.parse(data.join("\n")));
        }
      }
      setLive(false, "reconnecting…");
    } catch (error) {
      if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
        setLive(false, "stopped");
        showError(`The API key was refused: ${error.message}`);
        return;
      }
      setLive(false, "reconnecting…");
      if (error instanceof HttpError) showError(`The live stream failed: ${error.message}`);
    }
    await sleep(2000);
  }
}

async function start() {
  if (!key) {
    $("nokey").hidden = false;
    setLive(false, "no API key");
    return;
  }
  refreshChart();
  // A first picture from plain requests (a proxy may hold back the stream's first bytes),
  // then the live stream, which starts with a snapshot of its own.
  try {
    const [first, counters] = await Promise.all([api("/dashboard/bays"), api("/dashboard/counters")]);
    onEvent("snapshot", first);
    showCounters(counters);
  } catch (error) {
    if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
      setLive(false, "stopped");
      showError(`The API key was refused: ${error.message}`);
      return;
    }
  }
  follow();
}

start();
