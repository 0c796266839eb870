// The labeling page. It talks only to the service that served it, through /api.
// The annotator's token is kept in sessionStorage (this tab only) and sent as a
// Bearer header, never in a URL.
"use strict";

const TOKEN_KEY = "al_ray.labeling.token";
const EMPTY_POLL_MS = 5000;
// The progress line is read again this often, because other annotators'
// answers change how many tasks remain for this one.
const PROGRESS_POLL_MS = 5000;
// A submission that fails on the network is sent again with the same
// submission_id, which the server stores once.
const SUBMIT_ATTEMPTS = 3;

const state = {
  token: null,
  session: null,
  task: null,
  busy: false,
  view: "label",
  pollTimer: null,
  progressTimer: null,
  classByKey: new Map(),
  buttonByLabel: new Map(),
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  const options = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, "network", "The labeling server cannot be reached. Check that `al-ray label serve` is running.");
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (error) {
    payload = null;
  }
  if (!response.ok) {
    const code = payload && payload.error ? payload.error : "http_error";
    const message = payload && payload.message ? payload.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, code, message);
  }
  return { status: response.status, payload };
}

function newSubmissionId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    return window.crypto.randomUUID();
  }
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// An error line is about an earlier request, so it goes once a later one works.
function clearError() {
  if ($("status").classList.contains("error")) setStatus("");
}

// Sign-in and views.

function showSignIn(message = "") {
  stopPolling();
  stopProgressPolling();
  state.token = null;
  state.session = null;
  state.task = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("nav").hidden = true;
  $("labeling").hidden = true;
  $("quality").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

async function signIn(token) {
  state.token = token;
  let session;
  try {
    session = (await api("GET", "/api/session")).payload;
  } catch (error) {
    showSignIn(error.status === 401 ? "This token is not valid. Check it and try again." : error.message);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.session = session;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("who").textContent = `${session.annotator_id}${session.role === "admin" ? " (admin)" : ""}`;
  // Only admins have a second view to switch to.
  $("tab-label").hidden = session.role !== "admin";
  $("tab-quality").hidden = session.role !== "admin";
  buildButtons(session);
  setStatus("");
  showView("label");
}

function showView(view) {
  state.view = view;
  $("labeling").hidden = view !== "label";
  $("quality").hidden = view !== "quality";
  $("tab-label").setAttribute("aria-pressed", String(view === "label"));
  $("tab-quality").setAttribute("aria-pressed", String(view === "quality"));
  if (view === "label") {
    startProgressPolling();
    loadNext();
  } else {
    // The quality view holds no task, so a round does not wait on an admin reading it.
    stopPolling();
    stopProgressPolling();
    releaseTask();
    loadQuality();
  }
}

function handleError(error) {
  if (error.status === 401) {
    showSignIn("Your token is no longer accepted. Enter it again, or ask for a new one.");
    return;
  }
  setStatus(error.message, true);
}

// Buttons and keys.

function keyLabel(key) {
  return key === "Escape" ? "Esc" : key.toUpperCase();
}

function buildButtons(session) {
  const container = $("classes");
  container.replaceChildren();
  state.classByKey.clear();
  state.buttonByLabel.clear();
  for (const { label, key } of session.classes) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "class-button";
    button.dataset.label = label;
    const name = document.createElement("span");
    name.textContent = label;
    button.append(name);
    if (key) {
      const kbd = document.createElement("kbd");
      kbd.textContent = keyLabel(key);
      button.append(kbd);
      button.setAttribute("aria-keyshortcuts", key);
      state.classByKey.set(key, label);
    }
    button.addEventListener("click", () => answer(label));
    container.append(button);
    state.buttonByLabel.set(label, button);
  }
  const skip = $("skip");
  skip.replaceChildren(document.createTextNode("Skip"));
  for (const key of session.skip_keys) {
    const kbd = document.createElement("kbd");
    kbd.textContent = keyLabel(key);
    skip.append(kbd);
  }
  skip.setAttribute("aria-keyshortcuts", session.skip_keys.join(" "));
}

function flash(button) {
  if (!button) return;
  button.classList.add("pressed");
  setTimeout(() => button.classList.remove("pressed"), 150);
}

function onKeyDown(event) {
  if (state.view !== "label" || !state.session) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target instanceof HTMLInputElement) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (state.session.skip_keys.includes(key)) {
    event.preventDefault();
    flash($("skip"));
    skip();
    return;
  }
  const label = state.classByKey.get(key);
  if (label !== undefined) {
    event.preventDefault();
    flash(state.buttonByLabel.get(label));
    answer(label);
  }
}

function setBusy(busy) {
  state.busy = busy;
  for (const button of state.buttonByLabel.values()) button.disabled = busy || !state.task;
  $("skip").disabled = busy || !state.task;
}

// Tasks.

function stopPolling() {
  if (state.pollTimer !== null) {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }
}

function startProgressPolling() {
  stopProgressPolling();
  state.progressTimer = setInterval(() => {
    if (!document.hidden) loadProgress();
  }, PROGRESS_POLL_MS);
}

function stopProgressPolling() {
  if (state.progressTimer !== null) {
    clearInterval(state.progressTimer);
    state.progressTimer = null;
  }
}

function labelingShown() {
  return state.view === "label" && state.session !== null;
}

// Give the shown task back to the queue without skipping it, so that it may
// come back to this annotator later.
function releaseTask() {
  const task = state.task;
  if (!task) return;
  state.task = null;
  renderTask();
  api("POST", "/api/release", { item_id: task.item_id }).catch(() => {
    // The lease ends by itself after labeling.lease_timeout_s.
  });
}

// keepStatus leaves the status line as it is, for the line that explains why
// the page moves on.
async function loadNext({ keepStatus = false } = {}) {
  stopPolling();
  setBusy(true);
  try {
    const { payload } = await api("GET", "/api/next");
    state.task = payload.task;
    if (!labelingShown()) {
      // The view changed while the request was out, so the lease it took is not wanted.
      releaseTask();
      return;
    }
    renderTask();
    if (!keepStatus) clearError();
  } catch (error) {
    state.task = null;
    renderTask();
    handleError(error);
  } finally {
    setBusy(false);
  }
  if (!labelingShown()) return;
  loadProgress();
  if (!state.task) {
    state.pollTimer = setTimeout(loadNext, EMPTY_POLL_MS);
  }
}

async function loadProgress() {
  if (!state.session) return;
  try {
    const { payload } = await api("GET", "/api/progress");
    const done = payload.answered + payload.skipped;
    const total = done + payload.remaining;
    $("progress").textContent =
      `${payload.answered} answered · ${payload.skipped} skipped · ${payload.remaining} remaining`;
    $("meter-fill").style.width = total > 0 ? `${(100 * done) / total}%` : "0";
  } catch (error) {
    if (error.status === 401) handleError(error);
  }
}

async function answer(label) {
  if (state.busy || !state.task) return;
  const task = state.task;
  const body = { item_id: task.item_id, label, submission_id: newSubmissionId() };
  setBusy(true);
  try {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await api("POST", "/api/answers", body);
        break;
      } catch (error) {
        if (error.status !== 0 || attempt >= SUBMIT_ATTEMPTS) throw error;
      }
    }
    setStatus(`Saved ${label} for task ${task.item_id}.`);
  } catch (error) {
    setBusy(false);
    if (error.status === 409 || error.status === 404 || error.status === 403) {
      // The lease ran out and the task went to someone else, or it is gone: move on.
      setStatus(`${error.message} Loading the next task.`, true);
    } else {
      handleError(error);
      return;
    }
  }
  await loadNext({ keepStatus: true });
}

async function skip() {
  if (state.busy || !state.task) return;
  const task = state.task;
  setBusy(true);
  try {
    await api("POST", "/api/skip", { item_id: task.item_id });
    setStatus(`Skipped task ${task.item_id}.`);
  } catch (error) {
    setBusy(false);
    if (error.status !== 409 && error.status !== 404) {
      handleError(error);
      return;
    }
  }
  await loadNext({ keepStatus: true });
}

// A closed or reloaded page gives its task back at once, so that a round does
// not wait for the lease to run out. keepalive lets the request outlive the
// page; sendBeacon cannot send the Authorization header.
function onPageHide() {
  const task = state.task;
  if (!task || !state.token) return;
  state.task = null;
  try {
    fetch("/api/release", {
      method: "POST",
      keepalive: true,
      headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ item_id: task.item_id }),
    }).catch(() => {});
  } catch (error) {
    // The lease ends by itself after labeling.lease_timeout_s.
  }
}

// Rows.

function renderTask() {
  const row = $("row");
  row.replaceChildren();
  $("empty").hidden = Boolean(state.task);
  $("task-meta").textContent = state.task ? `Task ${state.task.item_id} · round ${state.task.round_index}` : "";
  if (!state.task) return;
  const data = state.task.row;
  if (data.display === "image") {
    row.append(renderImage(data));
  } else if (data.display === "text") {
    row.append(...renderText(data));
  } else {
    row.append(renderTable(data));
  }
}

function renderImage(data) {
  const canvas = document.createElement("canvas");
  canvas.className = "digit";
  canvas.width = data.width;
  canvas.height = data.height;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `image of ${data.width} by ${data.height} pixels`);
  const context = canvas.getContext("2d");
  const image = context.createImageData(data.width, data.height);
  const channels = data.channels || 1;
  for (let pixel = 0; pixel < data.width * data.height; pixel += 1) {
    const source = pixel * channels;
    const grey = channels === 1;
    image.data[4 * pixel] = data.pixels[source];
    image.data[4 * pixel + 1] = data.pixels[grey ? source : source + 1];
    image.data[4 * pixel + 2] = data.pixels[grey ? source : source + 2];
    image.data[4 * pixel + 3] = channels === 4 ? data.pixels[source + 3] : 255;
  }
  context.putImageData(image, 0, 0);
  // Keep the aspect ratio for images that are not square.
  const scale = 280 / Math.max(data.width, data.height);
  canvas.style.width = `${Math.round(data.width * scale)}px`;
  canvas.style.height = `${Math.round(data.height * scale)}px`;
  return canvas;
}

function renderText(data) {
  const parts = [];
  if (data.name) {
    const name = document.createElement("div");
    name.className = "row-text-name";
    name.textContent = data.name;
    parts.push(name);
  }
  const text = document.createElement("blockquote");
  text.className = "row-text";
  text.textContent = data.text;
  parts.push(text);
  return parts;
}

function renderTable(data) {
  const grid = document.createElement("div");
  grid.className = "feature-grid";
  for (const [name, value] of data.columns) {
    const cell = document.createElement("div");
    cell.className = "feature";
    const nameSpan = document.createElement("span");
    nameSpan.className = "feature-name";
    nameSpan.textContent = name;
    const valueSpan = document.createElement("span");
    valueSpan.className = "feature-value";
    valueSpan.textContent = value === null ? "–" : String(value);
    cell.append(nameSpan, valueSpan);
    grid.append(cell);
  }
  return grid;
}

// Admin view: the quality report. The keys listed below get display names,
// and any other key from the server is shown under its own name.

const QUALITY_NAMES = {
  annotators: "Annotators",
  pairs: "Pairs of annotators",
  items: "Queue",
  answers: "Answers",
  fleiss_kappa: "Fleiss' kappa",
  mean_cohen_kappa: "Mean Cohen's kappa",
  gold_accuracy: "Accuracy on gold rows",
  annotator_id: "Annotator",
  role: "Role",
  status: "Account",
  gold_answers: "Gold answers",
  gold_correct: "Gold correct",
  skipped: "Skipped",
  kappa: "Cohen's kappa",
  shared: "Shared rows",
};

// Names of the rows of the tables of counts, by section.
const COUNT_NAMES = {
  items: { open: "Open tasks", resolved: "Resolved tasks", gold: "Gold rows" },
  answers: { task: "To tasks", gold: "To gold rows" },
};

const QUALITY_EMPTY = {
  annotators: "No annotators yet.",
  pairs: "No pairs yet: Cohen's kappa needs two annotators who answered at least two of the same rows.",
};

// Shown for a figure that is undefined so far, such as a kappa without shared rows.
const NOT_YET = "not enough answers yet";

function displayName(key) {
  if (Object.hasOwn(QUALITY_NAMES, key)) return QUALITY_NAMES[key];
  const text = key.replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

async function loadQuality() {
  const body = $("quality-body");
  body.textContent = "Loading…";
  try {
    const { payload } = await api("GET", "/api/admin/quality");
    body.replaceChildren();
    // Single figures (kappas, pooled accuracy) go first, in one summary table.
    const isFigure = (value) => value === null || typeof value !== "object";
    const figures = Object.entries(payload).filter(([, value]) => isFigure(value));
    if (figures.length > 0) {
      const rows = figures.map(([key, value]) => [displayName(key), value === null ? NOT_YET : value]);
      body.append(heading("Summary"), tableOf(["", "value"], rows));
    }
    for (const [key, value] of Object.entries(payload)) {
      if (!isFigure(value)) body.append(heading(displayName(key)), renderValue(key, value));
    }
  } catch (error) {
    body.textContent = error.message;
    if (error.status === 401) handleError(error);
  }
}

function heading(text) {
  const element = document.createElement("h3");
  element.textContent = text;
  return element;
}

function paragraph(text) {
  const element = document.createElement("p");
  element.textContent = text;
  return element;
}

function formatScalar(value) {
  if (value === null || value === undefined) return "–";
  if (Array.isArray(value)) return value.map(formatScalar).join(" / ");
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  return String(value);
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function tableOf(header, rows) {
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const name of header) {
    const th = document.createElement("th");
    th.textContent = name === "" ? "" : displayName(name);
    head.append(th);
  }
  const tbody = table.createTBody();
  for (const row of rows) {
    const tr = tbody.insertRow();
    for (const value of row) {
      const td = tr.insertCell();
      td.textContent = formatScalar(value);
      if (typeof value === "number") td.className = "number";
    }
  }
  return table;
}

function renderValue(key, value) {
  if (Array.isArray(value) && value.length === 0) {
    return paragraph(QUALITY_EMPTY[key] ?? "None yet.");
  }
  if (Array.isArray(value) && value.every(isPlainObject)) {
    const columns = [...new Set(value.flatMap((item) => Object.keys(item)))];
    return tableOf(columns, value.map((item) => columns.map((column) => item[column])));
  }
  if (isPlainObject(value) && Object.values(value).every(isPlainObject)) {
    const columns = [...new Set(Object.values(value).flatMap((item) => Object.keys(item)))];
    return tableOf(["", ...columns], Object.entries(value).map(([name, item]) => [name, ...columns.map((c) => item[c])]));
  }
  if (isPlainObject(value)) {
    const names = COUNT_NAMES[key] ?? {};
    const rows = Object.entries(value).map(([name, item]) => [names[name] ?? displayName(name), item]);
    return tableOf(["", key in COUNT_NAMES ? "count" : "value"], rows);
  }
  return paragraph(Array.isArray(value) ? value.map(formatScalar).join(", ") : formatScalar(value));
}

// Start.

function start() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) signIn(token);
  });
  $("sign-out").addEventListener("click", () => showSignIn());
  $("tab-label").addEventListener("click", () => showView("label"));
  $("tab-quality").addEventListener("click", () => showView("quality"));
  $("refresh-quality").addEventListener("click", loadQuality);
  $("skip").addEventListener("click", skip);
  document.addEventListener("keydown", onKeyDown);
  window.addEventListener("pagehide", onPageHide);
  window.addEventListener("pageshow", (event) => {
    // A page restored from the back-forward cache released its task when it was hidden.
    if (event.persisted && labelingShown()) loadNext();
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    signIn(saved);
  } else {
    showSignIn();
  }
}

start();
