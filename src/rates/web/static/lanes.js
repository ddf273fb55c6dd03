// The lane explorer: pickers with autocomplete, a chart and a table of one lane's days.
// Its state is the URL (?origin=&destination=&date_from=&date_to=), so a lane can be shared.
import { el, readError, wholeDollars } from "./common.js";

const FIELDS = ["origin", "destination", "date_from", "date_to"];
const MIN_PRICES = 3; // the API gives no average under this many prices a day
const DAY_S = 86400;

const form = document.getElementById("lane-form");
const statusLine = document.getElementById("status");
const result = document.getElementById("result");
const chartBox = document.getElementById("chart");
let chart = null;
let loading = 0; // answers to older requests are dropped

// --- pickers ----------------------------------------------------------------------------------

function describe(location) {
  if (location.kind === "port") return `port in ${location.parent_name ?? location.parent}`;
  const where = location.parent ? `in ${location.parent_name ?? location.parent}` : "top level";
  return `region, depth ${location.depth}, ${where}`;
}

/** ARIA combobox over GET /locations: arrows move, Enter picks, Escape closes. */
function attachPicker(input) {
  const list = document.getElementById(input.getAttribute("aria-controls"));
  let matches = [];
  let active = -1;
  let timer = null;
  let asked = 0;

  function close() {
    matches = [];
    active = -1;
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function render() {
    list.replaceChildren(
      ...matches.map((location, index) => {
        const option = el(
          "li",
          { id: `${list.id}-${index}`, role: "option", "aria-selected": String(index === active),
            "data-code": location.code },
          el("span", { class: "code", text: location.code }),
          el("span", { class: "name", text: location.name }),
          el("span", { class: "meta", text: describe(location) }),
        );
        // mousedown, not click: picking must not blur the input first.
        option.addEventListener("mousedown", (event) => {
          event.preventDefault();
          pick(index);
        });
        return option;
      }),
    );
    if (matches.length === 0) {
      list.append(el("li", { class: "empty", role: "option", "aria-disabled": "true",
                             "aria-selected": "false", text: "No port or region matches" }));
    }
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    if (active >= 0) input.setAttribute("aria-activedescendant", `${list.id}-${active}`);
    else input.removeAttribute("aria-activedescendant");
  }

  function pick(index) {
    input.value = matches[index].code;
    clearFieldError(input.id);
    close();
  }

  async function search() {
    const text = input.value.trim();
    const mine = ++asked;
    if (!text) return close();
    const response = await fetch(`/locations?${new URLSearchParams({ q: text, limit: "8" })}`)
      .catch(() => null);
    if (mine !== asked || document.activeElement !== input) return;
    if (!response || !response.ok) return close();
    matches = (await response.json()).locations;
    active = -1;
    render();
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 120);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (list.hidden || matches.length === 0) return;
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = (active + step + matches.length) % matches.length;
      render();
      document.getElementById(`${list.id}-${active}`)?.scrollIntoView({ block: "nearest" });
    } else if (event.key === "Enter" && !list.hidden && active >= 0) {
      event.preventDefault();
      pick(active);
    } else if (event.key === "Escape" && !list.hidden) {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener("blur", () => {
    asked++;
    close();
  });
}

// --- errors next to their fields ----------------------------------------------------------------

function clearFieldError(name) {
  document.getElementById(`${name}-error`).textContent = "";
  document.getElementById(name).removeAttribute("aria-invalid");
}

function showError(error) {
  const parameter = error.details && error.details.parameter;
  const field = { orig_code: "origin", dest_code: "destination" }[parameter] ?? parameter;
  if (FIELDS.includes(field)) {
    document.getElementById(`${field}-error`).textContent = error.message;
    document.getElementById(field).setAttribute("aria-invalid", "true");
    setStatus("", false);
  } else {
    setStatus(error.message, true);
  }
}

function setStatus(text, isError) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

// --- the lane ---------------------------------------------------------------------------------

function laneFromUrl() {
  const params = new URLSearchParams(window.location.search);
  return Object.fromEntries(FIELDS.filter((f) => params.has(f)).map((f) => [f, params.get(f)]));
}

function fillForm(lane) {
  for (const field of FIELDS) document.getElementById(field).value = lane[field] ?? "";
}

function laneFromForm() {
  return Object.fromEntries(FIELDS.map((f) => [f, document.getElementById(f).value.trim()]));
}

async function load(lane) {
  const mine = ++loading;
  FIELDS.forEach(clearFieldError);
  setStatus("Loading…", false);
  form.setAttribute("aria-busy", "true");
  const query = new URLSearchParams(lane);
  let response;
  try {
    response = await fetch(`/rates?${query}`, { headers: { Accept: "application/json" } });
  } catch {
    response = null;
  }
  if (mine !== loading) return;
  form.removeAttribute("aria-busy");
  if (response === null || !response.ok) {
    result.hidden = true;
    showError(response ? await readError(response)
                       : { message: "The API cannot be reached; try again." });
    return;
  }
  const days = (await response.json()).rates.slice().reverse(); // oldest first
  setStatus("", false);
  render(lane, days, query);
}

function render(lane, days, query) {
  const priced = days.filter((day) => day.price !== null);
  const few = days.length - priced.length;
  document.getElementById("result-title").textContent = `${lane.origin} → ${lane.destination}`;
  document.getElementById("summary").textContent =
    `${lane.date_from} to ${lane.date_to}: ${days.length} days, ${priced.length} with an ` +
    `average, ${few} with too few prices (under ${MIN_PRICES}).`;
  document.getElementById("csv-link").href = `/rates?${query}&format=csv`;
  document.querySelector("#days tbody").replaceChildren(
    ...days.map((day) =>
      el(
        "tr",
        { class: day.price === null ? "too-few" : null },
        el("td", { text: day.day }),
        el("td", { class: "num", text: day.price === null ? "too few" : `$${wholeDollars(day.price)}` }),
        el("td", { class: "num", text: String(day.count) }),
      ),
    ),
  );
  result.hidden = false;
  drawChart(days);
}

// --- the chart (uPlot) --------------------------------------------------------------------------

function chartSize() {
  const width = Math.max(280, chartBox.clientWidth);
  return { width, height: Math.round(Math.min(360, Math.max(220, width * 0.45))) };
}

/** Shades each day with too few prices across the whole plot, under the line and bars. */
function shadeTooFewDays(u) {
  const xs = u.data[0];
  const counts = u.data[2].map((count, i) => count ?? u.data[3][i]);
  const { ctx } = u;
  ctx.save();
  ctx.fillStyle = "rgba(217, 119, 6, 0.13)";
  xs.forEach((x, i) => {
    if (counts[i] >= MIN_PRICES) return;
    const left = u.valToPos(x - DAY_S / 2, "x", true);
    const right = u.valToPos(x + DAY_S / 2, "x", true);
    ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
  });
  ctx.restore();
}

function drawChart(days) {
  const xs = days.map((day) => Date.parse(`${day.day}T00:00:00Z`) / 1000);
  const prices = days.map((day) => day.price);
  const enough = days.map((day) => (day.count >= MIN_PRICES ? day.count : null));
  const tooFew = days.map((day) => (day.count < MIN_PRICES ? day.count : null));
  const maxCount = Math.max(MIN_PRICES, ...days.map((day) => day.count));
  const bars = uPlot.paths.bars({ size: [0.6, 48] });
  const dollars = (u, value) => (value === null ? "–" : `$${wholeDollars(value)}`);
  const count = (u, value) => (value === null ? "–" : String(value));
  const options = {
    ...chartSize(),
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    cursor: { points: { size: 7 } },
    scales: {
      x: { time: true, range: (u, min, max) => [min - DAY_S / 2, max + DAY_S / 2] },
      // Bars keep to the lower third, under the line.
      count: { range: () => [0, maxCount * 3] },
    },
    series: [
      { value: "{YYYY}-{MM}-{DD}" },
      { label: "Average (USD)", scale: "usd", stroke: "#1d4ed8", width: 2, value: dollars,
        points: { show: days.length <= 62, size: 5 } },
      { label: "Prices", scale: "count", fill: "rgba(71, 85, 105, 0.35)",
        stroke: "rgba(71, 85, 105, 0.7)", paths: bars, points: { show: false }, value: count },
      { label: "Too few (< 3)", scale: "count", fill: "rgba(217, 119, 6, 0.75)",
        stroke: "#b45309", paths: bars, points: { show: false }, value: count },
    ],
    axes: [
      { grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#d1d5db" } },
      { scale: "usd", size: 64, grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#d1d5db" },
        values: (u, values) => values.map((v) => `$${wholeDollars(v)}`) },
      { scale: "count", side: 1, size: 40, grid: { show: false },
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000],
        values: (u, values) => values.map((v) => (v <= maxCount ? String(v) : "")) },
    ],
    hooks: { drawAxes: [shadeTooFewDays] },
  };
  if (chart) chart.destroy();
  chart = new uPlot(options, [xs, prices, enough, tooFew], chartBox);
  chartBox.setAttribute(
    "aria-label",
    `Chart of ${days.length} days: the daily average price as a line, the number of prices ` +
      "as bars; the table below holds the same figures.",
  );
}

new ResizeObserver(() => {
  if (chart && !result.hidden) chart.setSize(chartSize());
}).observe(chartBox);

// --- start ------------------------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const lane = laneFromForm();
  const url = `?${new URLSearchParams(lane)}`;
  if (url !== window.location.search) window.history.pushState(null, "", url);
  load(lane);
});

window.addEventListener("popstate", () => {
  const lane = laneFromUrl();
  fillForm(lane);
  load(lane);
});

async function start() {
  FIELDS.slice(0, 2).forEach((field) => attachPicker(document.getElementById(field)));
  const lane = laneFromUrl();
  if (Object.keys(lane).length > 0) {
    fillForm(lane);
    return load(lane);
  }
  // Nothing asked for yet: open with a lane that has recent prices.
  const response = await fetch("/lanes/example").catch(() => null);
  if (!response || !response.ok) {
    setStatus("Pick an origin, a destination and a range of days.", false);
    return;
  }
  const example = await response.json();
  const opening = Object.fromEntries(FIELDS.map((f) => [f, example[f]]));
  window.history.replaceState(null, "", `?${new URLSearchParams(opening)}`);
  fillForm(opening);
  return load(opening);
}

// uPlot loads as a deferred classic script; modules run after it.
start();
