// The console page: send a photo to /_cardgate/console/read, draw what the engine read and show
// each dialect's answer. Plain DOM, no framework; every value goes in as text, never as HTML.

const READ_URL = "/_cardgate/console/read";
const SNIPPETS_URL = "/_cardgate/console/snippets";
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const state = { file: null, photoUrl: null, reveal: false, snippets: null, selected: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// --- asking ------------------------------------------------------------------------------------

function query() {
  const params = new URLSearchParams();
  for (const box of document.querySelectorAll("#try-form input[type=checkbox]")) {
    if (box.checked) params.set(box.name, "1");
  }
  if (state.reveal) params.set("reveal", "1");
  return params.toString();
}

const REFUSALS = {
  401: "The console needs its password or token (reload the page to be asked).",
  413: "The photo is larger than any dialect takes.",
  429: "Too many console requests: wait a moment and try again.",
};

async function readPhoto() {
  if (!state.file) return;
  $("read-button").disabled = true;
  setStatus("Reading…");
  try {
    const response = await fetch(`${READ_URL}?${query()}`, {
      method: "POST",
      body: state.file,
      headers: { "content-type": state.file.type || "application/octet-stream" },
    });
    if (!response.ok) {
      let message = REFUSALS[response.status];
      if (!message) {
        const body = await response.json().catch(() => ({}));
        message = body.message || `The console answered HTTP ${response.status}.`;
      }
      setStatus(message, true);
      return;
    }
    const result = await response.json();
    showReading(result);
    await showAnswers(result.dialects);
    setStatus(result.reading ? "Read." : `The engine did not read a card (${result.error.type}); each API's error is below.`);
  } catch (error) {
    setStatus(`The gateway could not be reached: ${error.message}`, true);
  } finally {
    $("read-button").disabled = false;
  }
}

function choose(file) {
  if (!file) return;
  state.file = file;
  state.reveal = false;
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photoUrl = URL.createObjectURL(file);  // shown from memory: the page keeps no copy elsewhere
  readPhoto();
}

// --- the reading ---------------------------------------------------------------------------------

function points(quad) {
  return quad.map(([x, y]) => `${x},${y}`).join(" ");
}

function drawPicture(svg, href, size, shapes) {
  svg.replaceChildren();
  const [width, height] = size;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.append(svgEl("image", { href, x: 0, y: 0, width, height }));
  for (const [kind, shape] of shapes) {
    if (!shape) continue;
    if (Array.isArray(shape)) svg.append(svgEl("polygon", { class: kind, points: points(shape) }));
    else svg.append(svgEl("rect", { class: kind, x: shape.x, y: shape.y, width: shape.width, height: shape.height }));
  }
}

function naturalSize(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve([img.naturalWidth, img.naturalHeight]);
    img.onerror = () => resolve([800, 500]);
    img.src = url;
  });
}

async function showReading(result) {
  $("result").hidden = false;
  const reading = result.reading;
  const size = reading ? reading.image_size : (result.image_size || await naturalSize(state.photoUrl));
  drawPicture($("photo-view"), state.photoUrl, size, reading ? [
    ["outline", reading.card_quad],
    ["number", reading.number_quad],
    ["date", reading.expiry && reading.expiry.quad],
    ["date", reading.issue_date && reading.issue_date.quad],
  ] : []);
  const card = reading && reading.border_cut_jpeg;
  $("card-figure").hidden = !card;
  if (card) {
    drawPicture($("card-view"), `data:image/jpeg;base64,${card}`, reading.rectified_size, [
      ["number", reading.number_box],
      ["date", reading.expiry && reading.expiry.box],
      ["date", reading.issue_date && reading.issue_date.box],
    ]);
  }
  $("number").textContent = reading ? reading.number_printed || reading.number : "–";
  const reveal = $("reveal");
  reveal.hidden = !reading;
  reveal.textContent = state.reveal ? "Mask" : "Reveal";
  reveal.setAttribute("aria-pressed", String(state.reveal));
  showFields(reading, result.error);
  showTimings(result.stages_ms, reading ? reading.timings_ms : {});
}

function percent(value) {
  return value == null ? "–" : `${Math.round(value * 100)}%`;
}

function showFields(reading, error) {
  const rows = [];
  if (!reading) {
    rows.push(["engine", error ? error.type : "no reading"]);
  } else {
    const bank = reading.bank || {};
    rows.push(
      ["valid (Luhn, length)", reading.number_valid ? "yes" : "no"],
      ["confidence", percent(reading.number_confidence)],
      ["expiry", reading.expiry ? `${reading.expiry.text} (${percent(reading.expiry.confidence)})` : "–"],
      ["issue date", reading.issue_date ? reading.issue_date.text : "–"],
      ["bank", [bank.bank_name, bank.bank_name_en].filter(Boolean).join(" / ") || "–"],
      ["institution code", bank.institution_code || "–"],
      ["card", bank.card_name || "–"],
      ["kind", bank.card_kind || "–"],
      ["network", bank.network || "–"],
      ["quality", reading.quality == null ? "–" : String(reading.quality)],
      ["warnings", reading.warnings.length ? reading.warnings.join(", ") : "none"],
    );
  }
  $("fields").replaceChildren(...rows.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
}

function showTimings(stages, engine) {
  const rows = [
    ...Object.entries(stages || {}).map(([name, ms]) => [`gateway: ${name}`, ms]),
    ...Object.entries(engine || {}).map(([name, ms]) => [`engine: ${name}`, ms]),
  ];
  $("timings").tBodies[0].replaceChildren(
    ...rows.map(([name, ms]) => el("tr", {}, el("td", {}, name), el("td", {}, Number(ms).toFixed(1)))),
  );
}

// --- each dialect's answer -------------------------------------------------------------------------

async function snippets() {
  if (!state.snippets) {
    const response = await fetch(SNIPPETS_URL);
    state.snippets = response.ok ? await response.json() : {};
  }
  return state.snippets;
}

function pretty(body) {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

function copyButton(label, text) {
  const button = el("button", { type: "button", class: "quiet copy" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed (select the text)";
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

function panelFor(answer, snippet) {
  const headers = el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "header"), el("th", { scope: "col" }, "value"))));
  const body = el("tbody");
  for (const [name, value] of answer.headers) body.append(el("tr", {}, el("td", {}, name), el("td", {}, value)));
  headers.append(body);
  const request = answer.request;
  const text = answer.body_encoding === "utf-8" ? pretty(answer.body) : `(binary body, base64)\n${answer.body}`;
  return [
    el("p", {}, `${request.method} ${request.path}${request.query ? "?" + request.query : ""} → HTTP ${answer.status}`),
    el("h3", {}, "Headers"), el("div", { class: "scroll" }, headers),
    el("h3", {}, "Body"), copyButton("Copy body", text), el("pre", { tabindex: "0" }, text),
    el("h3", {}, "Python SDK pointed at this gateway"), copyButton("Copy snippet", snippet || ""),
    el("pre", { tabindex: "0" }, snippet || "(none)"),
  ];
}

function select(name, focus = false) {
  state.selected = name;
  for (const tab of $("tabs").children) {
    const on = tab.dataset.dialect === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on && focus) tab.focus();
  }
  for (const panel of $("panels").children) panel.hidden = panel.dataset.dialect !== name;
}

async function showAnswers(answers) {
  const code = await snippets();
  $("answers").hidden = false;
  const tabs = [], panels = [];
  for (const answer of answers) {
    const name = answer.dialect;
    const tab = el("button", { type: "button", role: "tab", id: `tab-${name}`, "aria-controls": `panel-${name}` },
                   name, el("span", { class: "status" }, String(answer.status)));
    tab.dataset.dialect = name;
    tab.addEventListener("click", () => select(name));
    const panel = el("div", { role: "tabpanel", id: `panel-${name}`, "aria-labelledby": `tab-${name}`, tabindex: "0" },
                     ...panelFor(answer, code[name]));
    panel.dataset.dialect = name;
    tabs.push(tab);
    panels.push(panel);
  }
  $("tabs").replaceChildren(...tabs);
  $("panels").replaceChildren(...panels);
  const names = answers.map((a) => a.dialect);
  select(names.includes(state.selected) ? state.selected : names[0]);
}

// Arrow keys move between tabs (the WAI-ARIA tabs pattern); Home and End go to the ends.
function onTabKey(event) {
  const tabs = [...$("tabs").children];
  const at = tabs.findIndex((tab) => tab.dataset.dialect === state.selected);
  const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 };
  if (!(event.key in moves) || !tabs.length) return;
  event.preventDefault();
  const next = (moves[event.key] + tabs.length) % tabs.length;
  select(tabs[next].dataset.dialect, true);
}

// --- wiring ------------------------------------------------------------------------------------------

function wire() {
  const drop = $("drop");
  $("photo").addEventListener("change", (event) => choose(event.target.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  $("try-form").addEventListener("submit", (event) => { event.preventDefault(); readPhoto(); });
  $("try-form").addEventListener("change", (event) => {
    if (event.target.type === "checkbox") readPhoto();
  });
  $("photo").addEventListener("change", () => { $("read-button").disabled = !state.file; });
  $("reveal").addEventListener("click", () => { state.reveal = !state.reveal; readPhoto(); });
  $("tabs").addEventListener("keydown", onTabKey);
}

wire();
