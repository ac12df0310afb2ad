// conda-store ui: small progressive enhancements over server-rendered pages.
// Every action calls the API gateway directly (same origin) with the browser's cookie; the
// API decides, and its refusal message is shown as is.
"use strict";

// The URL prefix the server runs under ("" or e.g. "/conda-store"): every path starts with it.
const ROOT = document.documentElement.dataset.root || "";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function flash(message, kind = "error") {
  const box = $("#flash");
  if (!box) return;
  box.textContent = message;
  box.className = "flash " + kind;
  box.hidden = false;
  clearTimeout(flash.timer);
  if (kind !== "error") flash.timer = setTimeout(() => { box.hidden = true; }, 2500);
}

async function apiMessage(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (typeof body.message === "string" && body.message) return body.message;
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  } catch (_) { /* not JSON */ }
  return text || `${response.status} ${response.statusText}`;
}

async function api(method, url, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(await apiMessage(response));
  const text = await response.text();
  try { return JSON.parse(text); } catch (_) { return text; }
}

function confirmDialog(text) {
  const dialog = $("#confirm-dialog");
  if (!dialog || !dialog.showModal) return Promise.resolve(window.confirm(text));
  $("#confirm-text", dialog).textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  flash("Copied: " + (text.length > 80 ? text.slice(0, 77) + "…" : text), "ok");
}

// Buttons that call the API: data-method, data-url, data-body, data-confirm, data-redirect.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-method][data-url]");
  if (!button) return;
  event.preventDefault();
  if (button.dataset.confirm && !(await confirmDialog(button.dataset.confirm))) return;
  button.disabled = true;
  try {
    const result = await api(button.dataset.method, button.dataset.url, button.dataset.body);
    if (button.dataset.redirectBuild && result && result.data && result.data.build_id) {
      window.location = `${ROOT}/build/${result.data.build_id}/`;
    } else if (button.dataset.redirect) {
      window.location = button.dataset.redirect;
    } else {
      window.location.reload();
    }
  } catch (error) {
    flash(error.message);
    button.disabled = false;
  }
});

document.addEventListener("click", async (event) => {
  const direct = event.target.closest("[data-copy]");
  if (direct) { event.preventDefault(); return copyText(direct.dataset.copy); }
  const remote = event.target.closest("[data-copy-url]");
  if (!remote) return;
  event.preventDefault();
  const response = await fetch(remote.dataset.copyUrl, { credentials: "same-origin" });
  if (!response.ok) return flash(await apiMessage(response));
  copyText((await response.text()).trim());
});

// Instant filtering of what is already on the page; Enter still asks the server.
for (const input of $$("input[data-filter]")) {
  input.addEventListener("input", () => {
    const needle = input.value.trim().toLowerCase();
    for (const row of $$(input.dataset.filter)) {
      row.hidden = needle !== "" && !row.dataset.name.toLowerCase().includes(needle);
    }
    for (const group of $$(".ns-group")) {
      group.hidden = $$(".env-row", group).every((row) => row.hidden);
    }
  });
}

// Login: JSON to the API's POST /login/, which sets the cookie.
const loginForm = $("#login-form");
if (loginForm) {
  loginForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#login-error");
    error.hidden = true;
    try {
      const result = await api("POST", `${ROOT}/login/`, {
        username: $("#username").value,
        password: $("#password").value,
      });
      // The page's own ?next= (a same-site path); the API's redirect_url is its base URL,
      // which is another origin when the ui is opened on its own port.
      void result;
      window.location = loginForm.dataset.next || `${ROOT}/`;
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  });
}

// User page: mint a token and offer to copy it.
const tokenButton = $("#create-token");
if (tokenButton) {
  tokenButton.addEventListener("click", async () => {
    try {
      const result = await api("POST", tokenButton.dataset.tokenUrl, {});
      $("#token-value").textContent = result.data.token;
      $("#token-box").hidden = false;
    } catch (e) { flash(e.message); }
  });
  $("#copy-token").addEventListener("click", () => copyText($("#token-value").textContent));
}

// Namespaces: create.
const namespaceForm = $("#namespace-form");
if (namespaceForm) {
  namespaceForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("#namespace-name").value.trim();
    try {
      await api("POST", `${ROOT}/api/v1/namespace/${encodeURIComponent(name)}/`);
      window.location.reload();
    } catch (e) { flash(e.message); }
  });
}

// Environment page: while a build runs, watch the list and refresh when a status changes.
const buildsTable = $("#builds");
if (buildsTable && buildsTable.dataset.running) {
  const seen = new Map($$("tr[data-status]", buildsTable).map((row) => [row.id, row.dataset.status]));
  const timer = setInterval(async () => {
    try {
      const result = await api("GET", buildsTable.dataset.poll);
      const changed = result.data.some((b) => seen.get(`build-${b.id}`) !== b.status);
      if (changed) { clearInterval(timer); window.location.reload(); }
    } catch (_) { /* keep the page; try again */ }
  }, 1000);
}

// Build page: live status and a log that streams while the build runs.
const buildLog = $("#build-log");
if (buildLog) {
  const facts = $("#build-facts");
  const buildId = facts.dataset.build;
  const terminal = new Set(["COMPLETED", "FAILED", "CANCELED"]);
  let status = facts.dataset.status;

  const follow = () => {
    const nearBottom = buildLog.scrollHeight - buildLog.scrollTop - buildLog.clientHeight < 40;
    return () => { if (nearBottom) buildLog.scrollTop = buildLog.scrollHeight; };
  };

  async function streamOnce() {
    const response = await fetch(buildLog.dataset.url, { credentials: "same-origin" });
    if (!response.ok) return false;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const keep = follow();
      buildLog.textContent = text;
      keep();
    }
    return true;
  }

  async function pollStatus() {
    try {
      const result = await api("GET", `${ROOT}/api/v1/build/${buildId}/`);
      if (result.data.status !== status) {
        status = result.data.status;
        $("#build-status").innerHTML = `<span class="badge status-${status.toLowerCase()}">${status.toLowerCase()}</span>`;
        facts.dataset.status = status;
      }
    } catch (_) { /* transient */ }
  }

  async function live() {
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    while (!terminal.has(status)) {
      await Promise.all([streamOnce().catch(() => false), pollStatus()]);
      if (!terminal.has(status)) await sleep(700);
    }
    await streamOnce().catch(() => false);
    // Artifacts, packages and times are rendered by the server: show them.
    if (buildLog.dataset.running) window.location.reload();
  }

  if (buildLog.dataset.running) live(); else streamOnce().catch(() => {});
}

// Create page: editor with line numbers, file drop/upload, checks before submit.
const createForm = $("#create-form");
if (createForm) {
  const textarea = $("#spec");
  const gutter = $("#gutter");
  const problemsList = $("#problems");
  const validity = $("#validity");
  const submit = $("#submit");
  const lockfileMode = () => $("#mode-lockfile").checked;
  let problems = [];
  let checking = null;
  let generation = 0;

  function drawGutter() {
    const lines = textarea.value.split("\n").length;
    const bad = new Map(problems.map((p) => [p.line, p.message]));
    let html = "";
    for (let i = 1; i <= lines; i++) {
      html += bad.has(i) ? `<span class="bad" title="${bad.get(i).replace(/"/g, "&quot;")}">${i}</span>\n` : `${i}\n`;
    }
    gutter.innerHTML = html;
    gutter.scrollTop = textarea.scrollTop;
  }

  function showProblems(list) {
    problems = list;
    problemsList.innerHTML = "";
    for (const p of list) {
      const item = document.createElement("li");
      item.className = "problem";
      item.dataset.line = p.line;
      item.innerHTML = `<button type="button" class="linkish">line ${p.line}</button> `;
      item.append(document.createTextNode(p.message));
      item.querySelector("button").addEventListener("click", () => jumpTo(p.line));
      problemsList.append(item);
    }
    drawGutter();
    validity.textContent = list.length ? `${list.length} problem${list.length > 1 ? "s" : ""}` : "Looks good";
    validity.className = list.length ? "error-text" : "ok-text";
    submit.disabled = list.length > 0 || !$("#namespace").value;
  }

  function jumpTo(line) {
    const lines = textarea.value.split("\n");
    const start = lines.slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0);
    textarea.focus();
    textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
  }

  // Quick local checks that need no round trip.
  function localProblems(text) {
    const found = [];
    text.split("\n").forEach((line, i) => {
      if (/^\t| \t/.test(line.match(/^\s*/)[0])) found.push({ line: i + 1, message: "Invalid YAML: tabs cannot be used for indentation" });
    });
    if (!text.trim()) found.push({ line: 1, message: "The specification is empty" });
    return found;
  }

  async function check() {
    const mine = ++generation;
    const text = textarea.value;
    const local = localProblems(text);
    if (local.length) { showProblems(local); return false; }
    validity.textContent = "Checking…";
    validity.className = "muted";
    const response = await fetch(`${ROOT}/create/validate`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        text,
        namespace: $("#namespace").value,
        is_lockfile: lockfileMode(),
        environment_name: $("#environment-name").value,
      }),
    });
    const verdict = response.ok ? await response.json() : { ok: false, errors: [{ line: 1, message: await apiMessage(response) }] };
    if (mine === generation) showProblems(verdict.errors);
    return verdict.ok;
  }

  function scheduleCheck() {
    drawGutter();
    clearTimeout(checking);
    checking = setTimeout(check, 250);
  }

  function loadFile(file) {
    const reader = new FileReader();
    reader.onload = () => {
      textarea.value = reader.result;
      $("#file-name").textContent = file.name;
      if (/lock/i.test(file.name)) $("#mode-lockfile").click();
      scheduleCheck();
    };
    reader.readAsText(file);
  }

  textarea.addEventListener("input", scheduleCheck);
  textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Tab") {
      event.preventDefault();
      textarea.setRangeText("  ", textarea.selectionStart, textarea.selectionEnd, "end");
      scheduleCheck();
    }
  });
  $("#namespace").addEventListener("change", scheduleCheck);
  $("#environment-name").addEventListener("input", scheduleCheck);
  for (const radio of $$("input[name=mode]")) {
    radio.addEventListener("change", () => {
      for (const el of $$(".lock-only")) el.hidden = !lockfileMode();
      scheduleCheck();
    });
  }
  $("#file-input").addEventListener("change", (event) => {
    if (event.target.files.length) loadFile(event.target.files[0]);
  });
  const zone = $("#dropzone");
  for (const kind of ["dragenter", "dragover"]) {
    zone.addEventListener(kind, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    zone.addEventListener(kind, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => {
    if (e.dataTransfer.files.length) loadFile(e.dataTransfer.files[0]);
  });

  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearTimeout(checking);
    submit.disabled = true;
    const error = $("#submit-error");
    error.hidden = true;
    if (!(await check())) return;
    const body = { namespace: $("#namespace").value, specification: textarea.value };
    if (lockfileMode()) {
      body.is_lockfile = true;
      body.environment_name = $("#environment-name").value;
    }
    try {
      const result = await api("POST", `${ROOT}/api/v1/specification/`, body);
      window.location = `${ROOT}/build/${result.data.build_id}/`;
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      submit.disabled = false;
    }
  });

  drawGutter();
  check();
}
