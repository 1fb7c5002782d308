// The compare report page: read a report.json (gateway/migrate/report.py writes it) in the browser
// and show agreement per field, each side's errors and latency, and the records. Text only.

const FIELDS = ["number", "expiry", "bank", "kind", "warnings", "error_code"];
const $ = (id) => document.getElementById(id);
let report = null;
// Photos the user picked, shown as thumbnails beside their records: record ids are the image
// paths as `cardgate compare` was given them, matched by path, then by file name.
const photos = new Map();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

const pct = (rate) => (rate == null ? "–" : `${(rate * 100).toFixed(1)}%`);
const text = (value) => (value == null ? "" : Array.isArray(value) ? (value.length ? value.join(", ") : "(none)") : String(value));
const verdict = (agree) => (agree == null ? "na" : agree ? "good" : "bad");

function show() {
  const { summary, records } = report;
  $("report").hidden = false;
  $("summary").textContent = `${summary.records} records (${(summary.dialects || []).join(", ")}); ` +
    `${summary.compared} compared, all fields agree on ${summary.agree} (${pct(summary.agreement)}).`;
  $("fields-table").tBodies[0].replaceChildren(...Object.entries(summary.fields).map(([name, f]) =>
    el("tr", {}, el("td", {}, name), el("td", {}, String(f.compared)), el("td", {}, String(f.agree)),
       el("td", { class: f.rate == null ? "na" : f.rate === 1 ? "good" : "bad" }, pct(f.rate)))));
  $("sides-table").tBodies[0].replaceChildren(...Object.entries(summary.sides).map(([name, side]) => {
    const lat = side.latency_ms || {};
    const codes = Object.entries(side.error_codes || {}).map(([c, n]) => `${c}: ${n}`).join(", ");
    const reasons = Object.entries(side.failure_reasons || {}).map(([c, n]) => `${c}: ${n}`).join(", ");
    return el("tr", {}, el("td", {}, name), el("td", {}, String(side.answers)),
              el("td", {}, `${side.errors} ${codes}`), el("td", {}, `${side.failures} ${reasons}`),
              el("td", {}, lat.count ? `${lat.mean} / ${lat.p50} / ${lat.p95} / ${lat.max}` : "–"));
  }));
  showRecords(records, Object.keys(summary.sides));
}

function showRecords(records, sides) {
  const only = $("only-disagreements").checked;
  const table = $("records-table");
  const heads = ["id", ...(photos.size ? ["image"] : []), "agree", "side", "status", "latency ms", ...FIELDS];
  table.tHead.replaceChildren(el("tr", {}, ...heads
    .map((name) => el("th", { scope: "col" }, name))));
  const rows = [];
  for (const record of records) {
    if (only && record.agree !== false) continue;
    const present = sides.filter((name) => name in (record.sides || {}));
    present.forEach((name, i) => {
      const side = record.sides[name];
      const cells = [];
      if (i === 0) {
        cells.push(el("td", { rowspan: String(present.length) }, text(record.id)));
        if (photos.size) {
          const url = photoFor(record.id);
          cells.push(el("td", { rowspan: String(present.length) }, ...(url ? [el("img", { src: url, alt: `photo ${record.id}`, class: "thumb" })] : [])));
        }
        cells.push(el("td", { rowspan: String(present.length), class: verdict(record.agree) },
                      record.agree == null ? "–" : record.agree ? "yes" : "no"));
      }
      cells.push(el("td", {}, name), el("td", {}, `${text(side.status)} ${text(side.failure)}`.trim()),
                 el("td", {}, text(side.latency_ms)),
                 ...FIELDS.map((field) => el("td", { class: verdict((record.fields || {})[field]) }, text(side[field]))));
      rows.push(el("tr", {}, ...cells));
    });
  }
  table.tBodies[0].replaceChildren(...rows);
  if (!rows.length) table.tBodies[0].append(el("tr", {}, el("td", { colspan: String(heads.length) }, "No records to show.")));
}

async function open(file) {
  if (!file) return;
  try {
    const data = JSON.parse(await file.text());
    if (!data.summary || !Array.isArray(data.records)) throw new Error("not a report.json (no summary and records)");
    report = data;
    $("report-status").textContent = `${file.name}: ${data.records.length} records.`;
    show();
  } catch (error) {
    $("report-status").textContent = `Cannot show ${file.name}: ${error.message}`;
  }
}

function photoFor(id) {
  const path = String(id || "").replaceAll("\\", "/");
  const name = path.split("/").pop();
  if (photos.has(path)) return photos.get(path);
  for (const [key, url] of photos) if (key.includes("/") && (path.endsWith("/" + key) || key.endsWith("/" + path))) return url;
  return photos.get(name);
}

function pickPhotos(files) {
  for (const url of new Set(photos.values())) URL.revokeObjectURL(url);
  photos.clear();
  for (const file of files) {
    const url = URL.createObjectURL(file);  // read in this browser only
    if (file.webkitRelativePath) photos.set(file.webkitRelativePath, url);
    photos.set(file.name, url);
  }
  if (report) showRecords(report.records, Object.keys(report.summary.sides));
}

const drop = $("report-drop");
$("report-images").addEventListener("change", (event) => pickPhotos(event.target.files));
$("report-folder").addEventListener("change", (event) => pickPhotos(event.target.files));
$("report-file").addEventListener("change", (event) => open(event.target.files[0]));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); open(event.dataTransfer.files[0]); });
$("only-disagreements").addEventListener("change", () => report && showRecords(report.records, Object.keys(report.summary.sides)));
