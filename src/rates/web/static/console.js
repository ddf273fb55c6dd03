// The batch console: list with a status filter, a batch's detail and error report, upload
// with progress, revert with a confirmation. Every call carries the bearer token, which lives
// in this tab's sessionStorage only (never in a URL). The URL keeps ?status= and ?batch=.
import { el, readError } from "./common.js";

const TOKEN_KEY = "rates.ingestToken";
const TERMINAL = new Set(["succeeded", "rejected", "failed", "reverted"]);
const POLL_MS = 500;
const MEDIA_TYPES = { csv: "text/csv", ndjson: "application/x-ndjson", jsonl: "application/x-ndjson" };
const PHASES = ["load", "count", "commit", "total"];

const $ = (id) => document.getElementById(id);
let selected = null; // id of the batch shown in the detail panel
let watching = 0; // detail polls of an older selection stop

// --- token ------------------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function showTokenState(message = "", isError = true) {
  const known = Boolean(token());
  $("token-form").hidden = known;
  $("token-state").hidden = !known;
  $("token-message").textContent = message;
  $("token-message").classList.toggle("error", isError);
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) {
    showTokenState("Enter the bearer token.");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  showTokenState();
  refreshList();
  if (selected !== null) showBatch(selected);
});

$("forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showTokenState();
  $("token").focus();
});

/** One API call with the token; a 401 asks for a (new) token. Returns {response, body}. */
async function api(path, method = "GET") {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(path, { method, headers, cache: "no-store" });
  } catch {
    return { response: null, error: { message: "The API cannot be reached; try again." } };
  }
  if (response.status === 401) {
    const error = await readError(response);
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState(`${error.message} Enter a valid token.`);
    return { response, error };
  }
  if (!response.ok) return { response, error: await readError(response) };
  return { response, body: await response.json() };
}

// --- URL state --------------------------------------------------------------------------------

function urlState() {
  const params = new URLSearchParams(window.location.search);
  const batch = Number.parseInt(params.get("batch") ?? "", 10);
  return { status: params.get("status") ?? "", batch: Number.isNaN(batch) ? null : batch };
}

function saveUrlState() {
  const params = new URLSearchParams();
  if ($("status-filter").value) params.set("status", $("status-filter").value);
  if (selected !== null) params.set("batch", String(selected));
  const query = params.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

// --- list -------------------------------------------------------------------------------------

function badge(status) {
  return el("span", { class: `badge ${status}`, text: status });
}

function when(iso) {
  return iso ? `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC` : "–";
}

async function refreshList() {
  const status = $("status-filter").value;
  const query = new URLSearchParams({ limit: "50", ...(status ? { status } : {}) });
  const { body, error } = await api(`/batches?${query}`);
  const message = $("list-message");
  message.classList.toggle("error", Boolean(error));
  if (error) {
    message.textContent = error.message;
    $("batches").querySelector("tbody").replaceChildren();
    return;
  }
  message.textContent = body.batches.length ? "" : `No ${status ? `${status} ` : ""}batches yet.`;
  $("batches").querySelector("tbody").replaceChildren(
    ...body.batches.map((batch) => {
      const open = el("button", { type: "button", class: "link", text: `#${batch.id}`,
                                  "aria-label": `Batch ${batch.id}` });
      open.addEventListener("click", () => select(batch.id));
      return el(
        "tr",
        { "data-batch": batch.id, "aria-current": batch.id === selected ? "true" : null },
        el("td", {}, open),
        el("td", {}, badge(batch.status)),
        el("td", { class: "num", text: batch.rows.total ?? "–" }),
        el("td", { text: when(batch.submitted_at) }),
      );
    }),
  );
}

$("status-filter").addEventListener("change", () => {
  saveUrlState();
  refreshList();
});
$("refresh").addEventListener("click", () => {
  refreshList();
  if (selected !== null) showBatch(selected);
});

// --- detail -----------------------------------------------------------------------------------

function select(id) {
  selected = id;
  saveUrlState();
  for (const row of $("batches").querySelectorAll("tbody tr")) {
    if (Number(row.dataset.batch) === id) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
  showBatch(id);
}

function table(caption, headings, rows, attributes = {}) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      attributes,
      el("caption", { class: "visually-hidden", text: caption }),
      el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", { text: c }))))),
    ),
  );
}

/** The line / field / reason table of a rejection (also of an upload refused at once). */
function reportTable(report, id) {
  const listed = report.errors.length;
  const note = `${report.invalid_rows} invalid row(s)` +
    (report.truncated ? `; the first ${listed} are listed` : "");
  return [
    el("h3", { text: "Error report" }),
    el("p", { class: "hint", text: note }),
    table("Problems by line", ["Line", "Field", "Reason"],
          report.errors.map((e) => [String(e.line), e.field, e.reason]), { id }),
  ];
}

function renderBatch(batch) {
  $("detail-title").replaceChildren(`Batch ${batch.id} `, badge(batch.status));
  $("detail-message").textContent = "";
  $("revert").hidden = batch.status !== "succeeded";
  const rows = batch.rows;
  const timings = batch.timings_s ?? {};
  const parts = [
    el(
      "dl",
      { class: "facts" },
      ...[
        ["Status", batch.status],
        ["Format", `${batch.format}${batch.compression === "gzip" ? " (gzip)" : ""}`],
        ["Source", batch.source],
        ["Size", batch.bytes === null ? "–" : `${batch.bytes.toLocaleString("en-US")} bytes`],
        ["Submitted", when(batch.submitted_at)],
        ["Started", when(batch.started_at)],
        ["Finished", when(batch.finished_at)],
        ...(batch.reverted_at ? [["Reverted", when(batch.reverted_at)]] : []),
        ["Attempts", String(batch.attempts)],
      ].flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]),
    ),
    el("h3", { text: "Rows" }),
    table("Rows", ["Total", "Inserted", "Invalid"],
          [[rows.total, rows.inserted, rows.invalid].map((n) => (n === null ? "–" : String(n)))],
          { id: "batch-rows" }),
  ];
  const phases = PHASES.filter((phase) => timings[phase] !== undefined);
  if (phases.length) {
    parts.push(el("h3", { text: "Timings" }),
               table("Seconds per phase", ["Phase", "Seconds"],
                     phases.map((p) => [p.replace("_", " "), Number(timings[p]).toFixed(3)]),
                     { id: "batch-timings" }));
  }
  if (batch.attempt_log && batch.attempt_log.length) {
    parts.push(el("h3", { text: "Attempts" }),
               table("Attempts", ["#", "Worker", "Started", "Finished", "Outcome", "Error"],
                     batch.attempt_log.map((a) => [String(a.attempt), a.worker ?? "–",
                       when(a.started_at), when(a.finished_at), a.outcome ?? "running",
                       a.error ?? ""]),
                     { id: "batch-attempts" }));
  }
  const report = batch.report;
  if (report && report.errors && report.errors.length) parts.push(...reportTable(report, "batch-report"));
  else if (report && report.message) {
    parts.push(el("h3", { text: "Error" }), el("p", { class: "message error", text: report.message }));
  }
  $("detail-body").replaceChildren(...parts);
}

/** Shows a batch and, until it ends, keeps it (and the list) up to date. */
async function showBatch(id) {
  const mine = ++watching;
  let afterEnd = 0;
  for (;;) {
    const { body, error } = await api(`/batches/${id}`);
    if (mine !== watching) return;
    if (error) {
      $("detail-title").textContent = `Batch ${id}`;
      $("detail-message").textContent = error.message;
      $("detail-body").replaceChildren();
      $("revert").hidden = true;
      return;
    }
    renderBatch(body);
    const listed = $("batches").querySelector(`tr[data-batch="${id}"] .badge`);
    if (listed && listed.textContent !== body.status) refreshList();
    // A batch's outcome commits just before its attempt is closed: poll a little longer
    // for the attempt's end, but not forever (a crashed worker's attempt waits for a peer).
    const settled = (body.attempt_log ?? []).every((attempt) => attempt.finished_at);
    if (TERMINAL.has(body.status) && (settled || ++afterEnd > 10)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (mine !== watching) return;
  }
}

// --- revert -----------------------------------------------------------------------------------

$("revert").addEventListener("click", () => {
  const rows = $("batch-rows")?.querySelector("tbody td:nth-child(2)")?.textContent ?? "its";
  $("revert-title").textContent = `Revert batch ${selected}?`;
  $("revert-text").textContent =
    `This removes the batch's ${rows} rows from the rates in one transaction. ` +
    "It cannot be undone; the file would have to be submitted again.";
  $("revert-dialog").showModal();
});

$("revert-dialog").addEventListener("close", async () => {
  if ($("revert-dialog").returnValue !== "revert" || selected === null) return;
  const id = selected;
  const { body, error } = await api(`/batches/${id}/revert`, "POST");
  await showBatch(id); // clears the message: set it after
  $("detail-message").textContent = error
    ? error.message
    : `Batch ${id} reverted: ${body.rows_deleted} rows removed.`;
  $("detail-message").classList.toggle("error", Boolean(error));
  refreshList();
});

// --- upload -----------------------------------------------------------------------------------

function mediaOf(name) {
  const parts = name.toLowerCase().split(".");
  const gzip = parts.at(-1) === "gz";
  const extension = gzip ? parts.at(-2) : parts.at(-1);
  const type = MEDIA_TYPES[extension];
  return type ? { type, gzip } : null;
}

function uploadMessage(text, isError) {
  $("upload-message").textContent = text;
  $("upload-message").classList.toggle("error", isError);
}

function upload(file) {
  const media = mediaOf(file.name);
  $("upload-report").replaceChildren();
  if (!media) {
    uploadMessage(`${file.name}: use .csv, .ndjson or .jsonl, optionally .gz`, true);
    return;
  }
  const request = new XMLHttpRequest();
  request.open("POST", "/batches");
  request.setRequestHeader("Content-Type", media.type);
  if (media.gzip) request.setRequestHeader("Content-Encoding", "gzip");
  if (token()) request.setRequestHeader("Authorization", `Bearer ${token()}`);
  request.setRequestHeader("Accept", "application/json");
  $("upload-progress").hidden = false;
  $("upload-bar").value = 0;
  $("upload-percent").textContent = "0%";
  uploadMessage(`Uploading ${file.name}…`, false);
  request.upload.addEventListener("progress", (event) => {
    if (!event.lengthComputable) return;
    const percent = Math.round((event.loaded / event.total) * 100);
    $("upload-bar").value = percent;
    $("upload-percent").textContent = `${percent}%`;
  });
  request.addEventListener("error", () => uploadMessage("The upload failed: the API cannot be reached.", true));
  request.addEventListener("load", () => {
    let body = null;
    try {
      body = JSON.parse(request.responseText);
    } catch {
      body = null;
    }
    if (request.status === 202 || request.status === 200) {
      $("upload-bar").value = 100;
      $("upload-percent").textContent = "100%";
      uploadMessage(request.status === 202
        ? `${file.name}: batch ${body.id} queued.`
        : `${file.name}: already submitted as batch ${body.id}.`, false);
      refreshList().then(() => select(body.id));
      return;
    }
    const error = (body && body.error) || { message: `The server answered ${request.status}.` };
    if (request.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showTokenState(`${error.message} Enter a valid token.`);
    }
    uploadMessage(`${file.name} refused: ${error.message}`, true);
    const report = error.details;
    if (report && Array.isArray(report.errors)) {
      $("upload-report").replaceChildren(...reportTable(report, "upload-report-table"));
    }
  });
  request.send(file);
}

$("file").addEventListener("change", () => {
  const [file] = $("file").files;
  if (file) upload(file);
  $("file").value = "";
});

const dropzone = $("dropzone");
dropzone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropzone.classList.add("over");
});
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
  const [file] = event.dataTransfer.files;
  if (file) upload(file);
});

// --- start ------------------------------------------------------------------------------------

const initial = urlState();
$("status-filter").value = initial.status;
selected = initial.batch;
if (token()) {
  showTokenState();
  refreshList();
  if (selected !== null) showBatch(selected);
} else {
  // Nothing is asked of the API without a token.
  showTokenState("Enter the bearer token to see and submit batches.", false);
  $("token").focus();
}
