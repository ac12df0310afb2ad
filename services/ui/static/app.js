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
  copyText((remote.dataset.copyPrefix || "") + (await response.text()).trim());
});

// A message kept across the reload that shows a change (e.g. "Saved").
const FLASH_KEY = "conda-store-flash";
function flashAfterReload(message) {
  sessionStorage.setItem(FLASH_KEY, message);
  window.location.reload();
}
if (sessionStorage.getItem(FLASH_KEY)) {
  flash(sessionStorage.getItem(FLASH_KEY), "ok");
  sessionStorage.removeItem(FLASH_KEY);
}

// Environment page: the description, changed in place (no rebuild).
const descriptionForm = $("#description-form");
if (descriptionForm) {
  const toggle = $("#edit-description");
  const input = $("#description-input");
  const error = $("#description-error");
  const open = (on) => {
    descriptionForm.hidden = !on;
    toggle.hidden = on;
    toggle.setAttribute("aria-expanded", String(on));
    (on ? input : toggle).focus();
  };
  toggle.addEventListener("click", () => open(true));
  $("#cancel-description").addEventListener("click", () => open(false));
  descriptionForm.addEventListener("keydown", (event) => { if (event.key === "Escape") open(false); });
  descriptionForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      await api("PUT", descriptionForm.dataset.url, { description: input.value });
      flashAfterReload("Description saved");
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      input.focus();
    }
  });
}

// Settings pages: send only what changed, after each value was checked on its own field.
const settingsForm = $("#settings-form");
if (settingsForm && $("#settings-save")) {
  const fields = $$(".setting", settingsForm);
  const controlOf = (field) => $("fieldset, input, textarea", field);
  const editable = (field) => !controlOf(field).disabled;

  function valueOf(field) {
    if (field.dataset.choices) {
      return $$("input[type=checkbox]", field).filter((c) => c.checked).map((c) => c.value);
    }
    const control = controlOf(field);
    if (field.dataset.type === "list") {
      return control.value.split("\n").map((line) => line.trim()).filter(Boolean);
    }
    const text = control.value.trim();
    if (text === "" && field.dataset.nullable) return null;
    if (field.dataset.type === "integer") return /^-?\d+$/.test(text) ? Number(text) : text;
    return control.value;
  }
  // A set of choices is the same whatever order it was stored in.
  const same = (field, a, b) => {
    const norm = (v) => JSON.stringify(field.dataset.choices && Array.isArray(v) ? [...v].sort() : v);
    return norm(a) === norm(b);
  };

  function changedValues() {
    const values = {};
    for (const field of fields.filter(editable)) {
      const value = valueOf(field);
      if (!same(field, value, JSON.parse(field.dataset.initial))) values[field.dataset.key] = value;
    }
    return values;
  }

  function showFieldErrors(errors) {
    for (const field of fields) {
      const key = field.dataset.key;
      const message = errors[key] || "";
      const box = $(`#err-${CSS.escape(key)}`);
      box.textContent = message;
      box.hidden = !message;
      field.classList.toggle("invalid", Boolean(message));
      if (message) controlOf(field).setAttribute("aria-invalid", "true");
      else controlOf(field).removeAttribute("aria-invalid");
    }
  }

  settingsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#settings-status");
    const failure = $("#settings-error");
    failure.hidden = true;
    const values = changedValues();
    const keys = Object.keys(values);
    if (!keys.length) { status.textContent = "Nothing has changed."; return; }
    status.textContent = "Checking…";
    const { errors } = await api("POST", `${ROOT}/setting/validate`, {
      level: settingsForm.dataset.level,
      values,
    });
    showFieldErrors(errors);
    const bad = fields.filter((f) => errors[f.dataset.key]);
    if (bad.length) {
      status.textContent = `${bad.length} setting${bad.length > 1 ? "s need" : " needs"} fixing`;
      const first = controlOf(bad[0]);
      (first.tagName === "FIELDSET" ? $("input", first) : first).focus();
      return;
    }
    status.textContent = "Saving…";
    try {
      await api("PUT", settingsForm.dataset.url, values);
      flashAfterReload(`Saved ${keys.join(", ")}`);
    } catch (e) {
      status.textContent = "";
      failure.textContent = e.message;
      failure.hidden = false;
    }
  });
}

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

// Environment page: while an update check runs, wait for the solver's answer.
const updatesCard = $("#updates");
if (updatesCard && updatesCard.dataset.pending) {
  const timer = setInterval(async () => {
    try {
      const result = await api("GET", updatesCard.dataset.poll);
      if (!result.data.pending) { clearInterval(timer); window.location.reload(); }
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
      if (!guidedOn) {  // lines belong to the YAML; the guided form marks its own fields
        item.innerHTML = `<button type="button" class="linkish">line ${p.line}</button> `;
        item.querySelector("button").addEventListener("click", () => jumpTo(p.line));
      }
      item.append(document.createTextNode(p.message));
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
    reader.onload = async () => {
      if (guidedOn) { $("#editor-yaml").checked = true; await useYaml(); }
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
    radio.addEventListener("change", async () => {
      if (lockfileMode() && guidedOn) { $("#editor-yaml").checked = true; await useYaml(); }
      for (const el of $$(".lock-only")) el.hidden = !lockfileMode();
      for (const el of $$(".spec-only")) el.hidden = lockfileMode();
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
    if (guidedOn && !(await toYaml())) {
      submit.disabled = false;
      const bad = $(".field-error:not([hidden])", guided);
      if (bad) $("input", bad.closest("li, .field") || guided).focus();
      return;
    }
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

  // --- The guided editor: form fields beside the YAML. The server converts both ways
  // (/create/guided, /create/yaml), so the YAML written is the one a person would write and
  // keys without a field survive; switching back without a change restores the text as it was.
  const guided = $("#guided");
  const yamlEditor = $("#yaml-editor");
  const switchError = $("#switch-error");
  const EDITOR_KEY = "conda-store-editor";
  let guidedOn = false;
  let snapshot = null;  // {text, model}: the YAML the form was filled from, the form then
  let guidedTimer = null;
  let yamlGeneration = 0;
  let rowCount = 0;
  const post = (path, body) => api("POST", `${ROOT}${path}`, body);
  const LISTS = {
    channel: { list: "#g-channels", label: "Channel", focus: ".g-channel" },
    package: { list: "#g-packages", label: "Package", focus: ".g-pkg-name" },
    pip: { list: "#g-pip", label: "pip package", focus: ".g-pip" },
    variable: { list: "#g-variables", label: "Variable", focus: ".g-var-key" },
  };

  // Every control of row i says which row it is, for screen readers.
  function labelRows(kind) {
    $$(`${LISTS[kind].list} > li`).forEach((row, i) => {
      const n = `${LISTS[kind].label} ${i + 1}`;
      for (const label of $$("label", row)) {
        const control = $("input, select", label);
        const word = label.firstChild.textContent.trim() || $(".g-version-word", label)?.textContent || "";
        const name = word === LISTS[kind].label ? n : `${n} ${word.toLowerCase()}`;
        control.setAttribute("aria-label", name);
      }
      for (const button of $$("button", row)) button.setAttribute("aria-label", `${button.textContent} ${n.toLowerCase()}`);
    });
  }

  function addRow(kind, fill) {
    const row = $(`#${kind}-row`).content.firstElementChild.cloneNode(true);
    const n = ++rowCount;
    row.dataset.kind = kind;
    for (const list of $$("datalist", row)) list.id = `${list.className}-${n}`;
    $(".g-pkg-name", row)?.setAttribute("list", `g-pkg-names-${n}`);
    for (const input of $$(".g-pkg-version, .g-pkg-upper", row)) input.setAttribute("list", `g-pkg-versions-${n}`);
    if (fill) fill(row);
    $(LISTS[kind].list).append(row);
    if (kind === "package") showOp(row);
    labelRows(kind);
    return row;
  }

  function showOp(row) {
    const op = $(".g-pkg-op", row).value;
    $(".g-when-version", row).hidden = !["==", ">=", "<", "range"].includes(op);
    $(".g-when-upper", row).hidden = op !== "range";
    $(".g-when-custom", row).hidden = op !== "custom";
    const words = { "==": "Version", ">=": "At least", "<": "Below", range: "From" };
    $(".g-version-word", row).textContent = words[op] || "Version";
    labelRows("package");
  }

  function fillModel(model) {
    $("#g-name").value = model.name;
    $("#g-description").value = model.description;
    for (const kind of Object.keys(LISTS)) $(LISTS[kind].list).innerHTML = "";
    for (const channel of model.channels) addRow("channel", (r) => { $(".g-channel", r).value = channel; });
    for (const p of model.packages) {
      addRow("package", (r) => {
        $(".g-pkg-name", r).value = p.name;
        $(".g-pkg-op", r).value = p.op;
        $(".g-pkg-version", r).value = p.version;
        $(".g-pkg-upper", r).value = p.upper;
        $(".g-pkg-constraint", r).value = p.constraint;
        if (p.source !== null) r.dataset.source = p.source;
      });
    }
    for (const entry of model.pip) addRow("pip", (r) => { $(".g-pip", r).value = entry; });
    for (const v of model.variables) {
      addRow("variable", (r) => {
        $(".g-var-key", r).value = v.key;
        $(".g-var-value", r).value = v.value;
        if (v.source !== null) r.dataset.source = JSON.stringify(v.source);
      });
    }
    guided.dataset.extra = JSON.stringify(model.extra || {});
  }

  function readModel() {
    const source = (row) => (row.dataset.source === undefined ? null : row.dataset.source);
    return {
      name: $("#g-name").value,
      description: $("#g-description").value,
      channels: $$("#g-channels .g-channel").map((i) => i.value),
      packages: $$("#g-packages > li").map((r) => ({
        name: $(".g-pkg-name", r).value,
        op: $(".g-pkg-op", r).value,
        version: $(".g-pkg-version", r).value,
        upper: $(".g-pkg-upper", r).value,
        constraint: $(".g-pkg-constraint", r).value,
        source: source(r),
      })),
      pip: $$("#g-pip .g-pip").map((i) => i.value),
      variables: $$("#g-variables > li").map((r) => ({
        key: $(".g-var-key", r).value,
        value: $(".g-var-value", r).value,
        source: source(r) === null ? null : JSON.parse(source(r)),
      })),
      extra: JSON.parse(guided.dataset.extra || "{}"),
    };
  }

  function showFieldErrors(errors) {
    const place = (box, message) => {
      box.textContent = message || "";
      box.hidden = !message;
      const control = $("input", box.closest("li, .field"));
      if (message) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
    };
    place($("#g-name-error"), errors.name);
    $$("#g-packages > li").forEach((r, i) => place($(".g-row-error", r), errors[`packages.${i}`]));
    $$("#g-pip > li").forEach((r, i) => place($(".g-row-error", r), errors[`pip.${i}`]));
  }

  // The form's YAML into the text area (and checked there); false if a field is wrong.
  async function toYaml() {
    clearTimeout(guidedTimer);
    const mine = ++yamlGeneration;
    const result = await post("/create/yaml", readModel());
    if (mine !== yamlGeneration) return false;
    textarea.value = result.text;
    showFieldErrors(result.errors);
    if (Object.keys(result.errors).length) {
      showProblems(Object.values(result.errors).map((message) => ({ line: 1, message })));
      return false;
    }
    return check();
  }

  function guidedChanged() {
    clearTimeout(guidedTimer);
    validity.textContent = "Checking…";
    validity.className = "muted";
    guidedTimer = setTimeout(toYaml, 300);
  }

  function showEditor(on) {
    guidedOn = on;
    guided.hidden = !on;
    yamlEditor.hidden = on;
    localStorage.setItem(EDITOR_KEY, on ? "guided" : "yaml");
  }

  async function useGuided() {
    switchError.hidden = true;
    let result;
    try {
      result = await post("/create/guided", { text: textarea.value });
    } catch (e) {
      result = { ok: false, message: e.message };
    }
    if (!result.ok) {
      switchError.textContent = `The guided editor cannot show this text (${result.message}); keep editing the YAML.`;
      switchError.hidden = false;
      $("#editor-yaml").checked = true;
      return;
    }
    fillModel(result.model);
    snapshot = { text: textarea.value, model: JSON.stringify(readModel()) };
    showEditor(true);
    showProblems(problems);  // the same problems, without YAML line numbers
    for (const row of $$("#g-packages > li")) suggestVersions(row);
  }

  async function useYaml() {
    switchError.hidden = true;
    if (snapshot && JSON.stringify(readModel()) === snapshot.model) {
      clearTimeout(guidedTimer);
      textarea.value = snapshot.text;  // nothing changed: the text as it was, comments and all
    } else {
      await toYaml();
    }
    snapshot = null;
    showEditor(false);
    scheduleCheck();
  }

  // Package names as you type, from the server's package index.
  async function suggestNames(input) {
    const query = input.value.trim();
    const list = $(`#${input.getAttribute("list")}`);
    if (!query) { list.innerHTML = ""; return; }
    const params = new URLSearchParams({ search: query, distinct_on: "name", sort_by: "name", size: "20" });
    const result = await api("GET", `${ROOT}/api/v1/package/?${params}`);
    if (input.value.trim() !== query) return;  // typed on meanwhile
    list.replaceChildren(...result.data.map((p) => new Option(p.summary || "", p.name)));
  }

  const sameChannel = (indexed, written) => {
    const a = indexed.replace(/\/+$/, "");
    const b = written.trim().replace(/\/+$/, "");
    return a === b || a.endsWith(`/${b}`);
  };
  const versionKey = (v) => v.split(/[.\-_+!]/).map((part) => (/^\d+$/.test(part) ? part.padStart(12, "0") : part));
  const newestFirst = (a, b) => {
    const ka = versionKey(a);
    const kb = versionKey(b);
    for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
      if ((ka[i] || "") !== (kb[i] || "")) return (ka[i] || "") < (kb[i] || "") ? 1 : -1;
    }
    return 0;
  };

  // The versions of a package in the editor's channels (every indexed one if none match).
  async function suggestVersions(row) {
    const name = $(".g-pkg-name", row).value.trim();
    const list = $(`#${$(".g-pkg-version", row).getAttribute("list")}`);
    if (!name || name.includes("::")) { list.innerHTML = ""; return; }
    const params = new URLSearchParams({ search: name, exact: "true", size: "100" });
    params.append("distinct_on", "channel");
    params.append("distinct_on", "version");
    const result = await api("GET", `${ROOT}/api/v1/package/?${params}`);
    const channels = $$("#g-channels .g-channel").map((i) => i.value).filter((c) => c.trim());
    const inChannels = result.data.filter((p) => channels.some((c) => sameChannel(p.channel.name, c)));
    const versions = [...new Set((inChannels.length ? inChannels : result.data).map((p) => p.version))];
    versions.sort(newestFirst);
    list.replaceChildren(...versions.map((v) => new Option(v, v)));
    row.dataset.versions = versions.join(" ");
  }

  const nameTimers = new WeakMap();
  guided.addEventListener("input", (event) => {
    const target = event.target;
    if (target.matches(".g-pkg-name")) {
      clearTimeout(nameTimers.get(target));
      nameTimers.set(target, setTimeout(() => suggestNames(target).catch(() => {}), 150));
    }
    guidedChanged();
  });
  guided.addEventListener("change", (event) => {
    const row = event.target.closest("li");
    if (event.target.matches(".g-pkg-op")) showOp(row);
    if (event.target.matches(".g-pkg-name")) suggestVersions(row).catch(() => {});
    if (event.target.matches(".g-channel")) {
      for (const r of $$("#g-packages > li")) suggestVersions(r).catch(() => {});
    }
    guidedChanged();
  });
  // Enter in a row's field must not submit the whole form by surprise.
  guided.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.closest("li") && event.target.tagName === "INPUT") {
      event.preventDefault();
    }
  });
  guided.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const row = button.closest("li");
    if (button.classList.contains("g-remove")) {
      const kind = row.dataset.kind;
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      labelRows(kind);
      (next ? $("input", next) : $(`#g-add-${kind}`)).focus();
      guidedChanged();
    } else if (button.classList.contains("g-up") && row.previousElementSibling) {
      row.previousElementSibling.before(row);
      labelRows(row.dataset.kind);
      button.focus();
      guidedChanged();
    }
  });
  for (const kind of Object.keys(LISTS)) {
    $(`#g-add-${kind}`).addEventListener("click", () => {
      const row = addRow(kind);
      $(LISTS[kind].focus, row).focus();
    });
  }
  for (const radio of $$("input[name=editor]")) {
    radio.addEventListener("change", () => (radio.value === "guided" ? useGuided() : useYaml()));
  }

  drawGutter();
  check();
  if (localStorage.getItem(EDITOR_KEY) === "guided") {
    $("#editor-guided").checked = true;
    useGuided();
  }
}

// Webhooks page: register one, then show its secret once (the API never shows it again).
const webhookForm = $("#webhook-form");
if (webhookForm) {
  const list = (id) => $(id).value.split(/[\s,]+/).filter(Boolean);
  webhookForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#webhook-error");
    error.hidden = true;
    try {
      const result = await api("POST", webhookForm.dataset.url, {
        url: $("#webhook-url").value.trim(),
        event_types: list("#webhook-types"),
        namespaces: list("#webhook-namespaces"),
        description: $("#webhook-description").value,
      });
      webhookForm.hidden = true;
      $("#webhook-secret").textContent = result.data.secret;
      $("#webhook-secret-box").hidden = false;
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  });
  $("#copy-webhook-secret").addEventListener("click", () => copyText($("#webhook-secret").textContent));
  $("#webhook-done").addEventListener("click", () => window.location.reload());
}
