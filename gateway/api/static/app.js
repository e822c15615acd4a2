// The live dashboard: plain JS, no framework, nothing fetched from outside the gateway.
//
// Everything comes from the gateway's own API. The token lives in sessionStorage (gone when the tab
// closes). Updates arrive on the /api/stream Server-Sent Events; while the stream is not open the page
// polls every 5 s instead, so a proxy that breaks SSE costs freshness, never correctness.
"use strict";

const TOKEN_KEY = "cgt-gateway.token";
const POLL_MS = 5000;
const SAFETY_REFRESH_MS = 30000; // a full refresh even while live: bindings, new equipment, missed events
const ROLES = ["viewer", "operator", "qa", "admin"];
const BINDING_PARAMETER = "lot_binding";

const state = {
  token: null,
  me: null,
  equipment: new Map(), // id -> {info, values: Map(parameter -> value)}
  alarms: [],
  sinks: [],
  mode: "signed-out", // signed-out | live | polling | offline
  stream: null,
  timers: [],
  clockOffsetS: 0, // gateway clock minus this browser's, from the status events
  lastUpdate: null,
  renderPending: false,
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, `the gateway does not answer (${err.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data && data.error ? data.error : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

// -- formatting -------------------------------------------------------------------------------

function fmtTime(iso) {
  if (!iso) return "—";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  const text = t.toISOString(); // the journal's times are UTC; so are the page's
  const today = new Date().toISOString().slice(0, 10);
  return (text.slice(0, 10) === today ? "" : `${text.slice(0, 10)} `) + `${text.slice(11, 19)} UTC`;
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, seconds);
  if (s < 1) return "<1 s";
  if (s < 120) return `${Math.floor(s)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

function fmtValue(value) {
  if (value === null || value === undefined) return "no value";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return Number(value.toPrecision(6)).toString();
  }
  return String(value);
}

function severity(quality) {
  const q = String(quality || "");
  if (q.startsWith("Bad")) return "bad";
  if (q.startsWith("Uncertain")) return "uncertain";
  return "good";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Identifiers like particle_concentration_0_5um may wrap after an underscore, never mid-word.
function breakable(name) {
  const parts = String(name).split("_");
  return parts.flatMap((part, i) => (i < parts.length - 1 ? [`${part}_`, el("wbr")] : [part]));
}

function canAct(minimum) {
  return state.me !== null && ROLES.indexOf(state.me.role) >= ROLES.indexOf(minimum);
}

// -- the model --------------------------------------------------------------------------------

function now() {
  return Date.now() / 1000;
}

// The gateway's clock, as far as the status events tell: ages of streamed values are measured on it.
function gatewayNow() {
  return now() + state.clockOffsetS;
}

// A value's age keeps counting in the page: the age the gateway gave plus the time since it arrived.
function valueFrom(v, ageAtArrival) {
  return {
    parameter: v.parameter, value: v.value, unit: v.unit, quality: v.quality, kind: v.kind,
    source_time: v.source_time, seq: v.seq, ageAtArrival, arrived: now(),
  };
}

function setEquipment(list) {
  const next = new Map();
  for (const info of list) {
    const values = new Map();
    for (const v of info.last_values || []) values.set(v.parameter, valueFrom(v, v.age_s ?? null));
    next.set(info.id, { info, values });
  }
  state.equipment = next;
}

function applyRecords(records) {
  let alarmsChanged = false;
  let needEquipment = false;
  for (const r of records) {
    const eq = state.equipment.get(r.equipment_id);
    if (!eq) {
      needEquipment = true;
      continue;
    }
    const previous = eq.values.get(r.parameter);
    if (previous && previous.seq !== undefined && r.seq !== undefined && previous.seq > r.seq) continue;
    const sampled = r.source_time ? Date.parse(r.source_time) / 1000 : NaN;
    eq.values.set(r.parameter, valueFrom(r, Number.isNaN(sampled) ? 0 : Math.max(0, gatewayNow() - sampled)));
    if (r.kind === "alarm") alarmsChanged = true;
    if (r.parameter === BINDING_PARAMETER) needEquipment = true;
  }
  if (alarmsChanged) refreshSoon("alarms");
  if (needEquipment) refreshSoon("equipment");
  touched();
}

function applyStatus(status) {
  const devices = status && status.devices;
  if (Array.isArray(devices)) {
    for (const d of devices) updateDevice(d.id || d.equipment_id, d);
  } else if (devices && typeof devices === "object" && !("up" in devices && typeof devices.up === "number")) {
    for (const [id, d] of Object.entries(devices)) updateDevice(id, typeof d === "string" ? { state: d } : d);
  }
  if (status && Array.isArray(status.sinks)) state.sinks = status.sinks;
  const serverTime = status && status.time ? Date.parse(status.time) / 1000 : NaN;
  if (!Number.isNaN(serverTime)) state.clockOffsetS = serverTime - now();
  touched();
}

function updateDevice(id, d) {
  const eq = state.equipment.get(id);
  if (!eq || !d) return;
  for (const key of ["state", "since", "last_error"]) if (key in d) eq.info[key] = d[key];
}

function touched() {
  state.lastUpdate = new Date();
  scheduleRender();
}

// -- fetching ---------------------------------------------------------------------------------

const pending = new Set();
let pendingTimer = null;

function refreshSoon(what) {
  pending.add(what);
  if (pendingTimer !== null) return;
  pendingTimer = setTimeout(async () => {
    pendingTimer = null;
    const parts = [...pending];
    pending.clear();
    await refresh(parts);
  }, 250);
}

async function refresh(parts = ["equipment", "alarms", "sinks", "health"]) {
  if (!state.token) return;
  const jobs = {
    equipment: async () => setEquipment(await api("/api/equipment")),
    alarms: async () => { state.alarms = await api("/api/alarms?state=active"); },
    sinks: async () => { state.sinks = await api("/api/sinks"); },
    health: async () => {
      const health = await api("/healthz");
      $("gateway-id").textContent = health.gateway_id ? `· ${health.gateway_id}` : "";
    },
  };
  try {
    await Promise.all(parts.map((p) => jobs[p]()));
    if (state.mode === "offline") setMode("polling");
    showError(null);
    touched();
  } catch (err) {
    handleError(err);
  }
}

function handleError(err) {
  if (err.status === 401) {
    signOut("The gateway refused this token: enter a valid one.");
  } else if (err.status === 0) {
    setMode("offline", err.message);
  } else {
    showError(err.message);
  }
}

// -- live stream with a polling fallback --------------------------------------------------------

function openStream() {
  closeStream();
  if (!state.token || typeof EventSource === "undefined") {
    setMode("polling");
    return;
  }
  const stream = new EventSource(`/api/stream?token=${encodeURIComponent(state.token)}`);
  state.stream = stream;
  stream.addEventListener("open", () => {
    if (state.stream !== stream) return;
    setMode("live");
    refresh(); // whatever happened while the stream was down
  });
  stream.addEventListener("records", (event) => {
    try {
      applyRecords(JSON.parse(event.data));
    } catch (err) {
      console.warn("unreadable records event", err);
    }
  });
  stream.addEventListener("status", (event) => {
    try {
      applyStatus(JSON.parse(event.data));
    } catch (err) {
      console.warn("unreadable status event", err);
    }
  });
  stream.addEventListener("error", () => {
    if (state.stream !== stream) return;
    if (state.mode === "live") setMode("polling");
    if (stream.readyState === EventSource.CLOSED) {
      // refused (401) or the server went away: try again later, poll meanwhile
      stream.close();
      state.stream = null;
      setTimeoutTracked(() => state.token && !state.stream && openStream(), 3 * POLL_MS);
    }
  });
}

function closeStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
}

function setTimeoutTracked(fn, ms) {
  state.timers.push(setTimeout(fn, ms));
}

function start() {
  stopTimers();
  setMode("polling");
  refresh();
  openStream();
  state.timers.push(setInterval(() => {
    if (state.mode !== "live") refresh();
  }, POLL_MS));
  state.timers.push(setInterval(() => {
    if (state.mode === "live") refresh();
  }, SAFETY_REFRESH_MS));
  state.timers.push(setInterval(scheduleRender, 1000)); // ages keep counting
}

function stopTimers() {
  for (const t of state.timers) {
    clearInterval(t);
    clearTimeout(t);
  }
  state.timers = [];
}

function setMode(mode, detail) {
  state.mode = mode;
  const text = {
    "signed-out": "not signed in",
    live: "live",
    polling: "updating every 5 s (live stream not connected)",
    offline: `gateway unreachable${detail ? `: ${detail}` : ""}; retrying every 5 s`,
  }[mode];
  const node = $("connection");
  node.textContent = text;
  node.dataset.mode = mode;
}

// -- signing in -------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    state.me = await api("/api/me");
  } catch (err) {
    state.token = null;
    state.me = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showError(err.status === 401 ? "The gateway refused this token." : err.message);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("whoami").textContent = `Signed in as ${state.me.name} (${state.me.role}).`;
  document.body.dataset.signedIn = "true";
  showError(null);
  start();
}

function signOut(message) {
  stopTimers();
  closeStream();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  state.equipment = new Map();
  state.alarms = [];
  state.sinks = [];
  $("whoami").textContent = "";
  delete document.body.dataset.signedIn;
  setMode("signed-out");
  showError(message || null);
  render();
}

function showError(message) {
  const node = $("error");
  node.hidden = !message;
  node.textContent = message || "";
}

// -- rendering --------------------------------------------------------------------------------

function scheduleRender() {
  if (state.renderPending) return;
  state.renderPending = true;
  requestAnimationFrame(() => {
    state.renderPending = false;
    render();
  });
}

function render() {
  renderTiles();
  renderAlarms();
  renderSinks();
  $("updated").textContent = state.lastUpdate ? `last update ${fmtTime(state.lastUpdate.toISOString())}` : "no data yet";
}

function renderTiles() {
  const tiles = $("tiles");
  const list = [...state.equipment.values()];
  $("no-equipment").textContent = state.token ? "No equipment configured." : "Sign in to see the equipment.";
  $("no-equipment").hidden = list.length > 0;
  tiles.replaceChildren(...list.map(tile));
}

function tile({ info, values }) {
  const headingId = `eq-${info.id}`;
  const up = info.state === "up";
  const stateText = info.state || "unknown";
  const since = info.since ? ` since ${fmtTime(info.since)} (${fmtAge(gatewayNow() - Date.parse(info.since) / 1000)})` : "";
  const rows = [...values.values()].sort((a, b) => a.parameter.localeCompare(b.parameter)).map(valueRow);
  return el("article", { class: `tile state-${stateText}`, "data-equipment": info.id, "aria-labelledby": headingId },
    el("h3", { id: headingId }, info.id),
    el("p", { class: "muted" }, [info.class, info.kind].filter(Boolean).join(" · ")),
    el("p", { class: "state" },
      el("span", { class: `badge badge-${up ? "up" : stateText === "down" ? "down" : "other"}`, "data-state": stateText },
        stateText.toUpperCase()),
      since),
    info.last_error && !up ? el("p", { class: "error small" }, info.last_error) : null,
    bindingLine(info.binding),
    rows.length
      ? el("table", { class: "values" },
        el("caption", { class: "visually-hidden" }, `Last values of ${info.id}`),
        el("thead", {}, el("tr", {},
          el("th", { scope: "col" }, "Parameter"), el("th", { scope: "col" }, "Value"),
          el("th", { scope: "col" }, "Quality"), el("th", { scope: "col" }, "Age"))),
        el("tbody", {}, ...rows))
      : el("p", { class: "muted" }, "No value yet."));
}

function bindingLine(binding) {
  if (!binding) return el("p", { class: "binding unbound" }, "No lot bound");
  const parts = [el("strong", {}, `Lot ${binding.lot_id}`)];
  if (binding.coi_id) parts.push(` · COI ${binding.coi_id}`);
  if (binding.dins && binding.dins.length) parts.push(` · DIN ${binding.dins.join(", ")}`);
  if (binding.process_step) parts.push(` · ${binding.process_step}`);
  return el("p", { class: "binding bound", "data-lot": binding.lot_id }, ...parts);
}

function valueRow(v) {
  const sev = severity(v.quality);
  const age = v.ageAtArrival === null ? null : v.ageAtArrival + (now() - v.arrived);
  const value = v.unit && v.value !== null && v.value !== undefined ? `${fmtValue(v.value)} ${v.unit}` : fmtValue(v.value);
  return el("tr", { class: `q-${sev} kind-${v.kind || "measurement"}`, "data-parameter": v.parameter },
    el("th", { scope: "row" }, ...breakable(v.parameter)),
    el("td", { class: "num" }, value),
    el("td", { class: "quality" }, sev === "good" ? v.quality : `${sev === "bad" ? "✖" : "⚠"} ${v.quality}`),
    el("td", { class: `num${age !== null && age > 60 ? " stale" : ""}` }, fmtAge(age)));
}

function renderAlarms() {
  const list = $("alarm-list");
  $("alarm-count").textContent = String(state.alarms.length);
  $("alarm-count").dataset.active = state.alarms.length ? "true" : "false";
  $("no-alarms").hidden = state.alarms.length > 0;
  list.replaceChildren(...state.alarms.map(alarmItem));
}

function alarmItem(alarm) {
  const textId = `alarm-${alarm.seq}`;
  const ack = alarm.acknowledged;
  return el("li", { class: `alarm${ack ? " acknowledged" : ""}`, "data-seq": alarm.seq },
    el("div", { id: textId },
      el("strong", {}, `${alarm.equipment_id} · ${alarm.parameter}: ${fmtValue(alarm.value)}`),
      el("span", { class: "muted" }, ` at ${fmtTime(alarm.source_time)} (seq ${alarm.seq})`),
      alarm.detail ? el("div", { class: "small" }, alarm.detail) : null,
      ack ? el("div", { class: "small ack" },
        `Acknowledged by ${ack.actor} at ${fmtTime(ack.time)}: ${ack.reason}`) : null),
    !ack && canAct("operator")
      ? acknowledgeButton(alarm, textId)
      : null);
}

function acknowledgeButton(alarm, describedBy) {
  const button = el("button", { type: "button", "aria-describedby": describedBy }, "Acknowledge");
  button.addEventListener("click", () => openAcknowledge(alarm));
  return button;
}

function renderSinks() {
  const rows = state.sinks.map((s) => {
    const dead = s.dead_letters ?? s.rejected ?? 0;
    return el("tr", { "data-sink": s.name, class: s.backlog ? "behind" : "" },
      el("th", { scope: "row" }, s.name),
      el("td", {}, s.state || "—"),
      el("td", { class: "num" }, fmtValue(s.backlog ?? 0)),
      el("td", { class: "num" }, s.backlog ? fmtAge(s.backlog_age_s) : "—"),
      el("td", { class: `num${dead ? " bad" : ""}` }, fmtValue(dead)),
      el("td", { class: "small" }, s.last_error || ""));
  });
  if (!rows.length) {
    rows.push(el("tr", {}, el("td", { colspan: "6", class: "muted" }, state.token ? "No sink configured." : "—")));
  }
  $("sink-rows").replaceChildren(...rows);
}

// -- acknowledging ----------------------------------------------------------------------------

let acknowledging = null;

function openAcknowledge(alarm) {
  acknowledging = alarm;
  $("ack-what").textContent = `${alarm.equipment_id} · ${alarm.parameter}: ${fmtValue(alarm.value)} at ${fmtTime(alarm.source_time)}`;
  $("ack-comment").value = "";
  $("ack-error").hidden = true;
  $("ack-submit").disabled = false;
  $("ack-dialog").showModal();
  $("ack-comment").focus();
}

async function submitAcknowledge(event) {
  event.preventDefault();
  const comment = $("ack-comment").value.trim();
  const error = $("ack-error");
  if (!comment) {
    error.textContent = "A comment is required: say why the alarm is acknowledged.";
    error.hidden = false;
    return;
  }
  const alarm = acknowledging;
  $("ack-submit").disabled = true;
  try {
    await api(`/api/alarms/${encodeURIComponent(alarm.seq)}/acknowledge`, { method: "POST", body: { comment } });
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
    $("ack-submit").disabled = false;
    if (err.status === 401) signOut("The gateway refused this token: enter a valid one.");
    return;
  }
  acknowledging = null;
  $("ack-dialog").close();
  await refresh(["alarms"]);
}

// -- wiring -----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) signIn(token);
  });
  $("forget-token").addEventListener("click", () => signOut());
  $("ack-form").addEventListener("submit", submitAcknowledge);
  $("ack-cancel").addEventListener("click", () => {
    acknowledging = null;
    $("ack-dialog").close();
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  render();
  if (saved) signIn(saved);
});
