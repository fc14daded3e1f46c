// The live page: polls /live/stats.json every second and shows what changed over about the
// last second. The server sends counters; rates and latency percentiles come from the
// difference between two polls, so the server keeps no history. Built into the binary; no
// dependencies.
"use strict";

const POLL_MS = 1000;
// Recent polls, oldest first; rates compare the newest with one about RATE_WINDOW_S older.
const RATE_WINDOW_S = 1;
const history = [];
let polls = 0;

const $ = (id) => document.getElementById(id);
const fmt = (n, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–";

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// Seconds between two polls, by the Redis clock when both have it.
function interval(now, before) {
  if (now.at && before.at) return (Date.parse(now.at) - Date.parse(before.at)) / 1000;
  return POLL_MS / 1000;
}

function rates(now, before, dt) {
  const out = {};
  for (const [outcome, n] of Object.entries(now || {})) {
    out[outcome] = dt > 0 ? Math.max(0, n - ((before || {})[outcome] || 0)) / dt : 0;
  }
  return out;
}

// A quantile from the histogram's growth since the last poll, by linear interpolation inside
// the bucket it falls in (as Prometheus's histogram_quantile does).
function quantile(q, now, before) {
  const counts = now.cumulative.map((c, i) => c - (before ? before.cumulative[i] || 0 : 0));
  const total = counts.length ? counts[counts.length - 1] : 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] >= rank) {
      const lower = i === 0 ? 0 : now.bounds[i - 1];
      const below = i === 0 ? 0 : counts[i - 1];
      const upper = Number.isFinite(now.bounds[i]) ? now.bounds[i] : lower;
      const inBucket = counts[i] - below;
      return lower + (upper - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1);
    }
  }
  return now.bounds[now.bounds.length - 1];
}

const sum = (obj) => Object.values(obj).reduce((a, b) => a + b, 0);
const ms = (s) => (Number.isFinite(s) ? fmt(s * 1000, s < 0.01 ? 2 : 1) + " ms" : "–");

// The newest poll at least RATE_WINDOW_S older than `stats`, else the oldest one kept.
function baseline(stats) {
  let base = history.length ? history[0] : null;
  for (const old of history) {
    if (interval(stats, old) >= RATE_WINDOW_S) base = old;
  }
  return base;
}

function render(stats) {
  const previous = baseline(stats);
  const dt = previous ? interval(stats, previous) : 0;
  const overall = rates(stats.outcomes, previous && previous.outcomes, dt);
  $("clock").textContent = stats.at ? "Redis clock " + stats.at.replace("T", " ").slice(0, 19) + " UTC" : "Redis unreachable";
  $("clock").className = stats.at ? "dim" : "bad";
  $("rps").textContent = previous ? fmt(sum(overall)) : "–";
  $("issued-rps").textContent = previous ? fmt(overall.issued || 0) : "–";
  const p50 = quantile(0.5, stats.latency, previous && previous.latency);
  const p99 = quantile(0.99, stats.latency, previous && previous.latency);
  const bare = (s) => (Number.isFinite(s) ? fmt(s * 1000, s < 0.01 ? 2 : 1) : "–");
  $("latency").textContent = previous ? bare(p50) + " / " + bare(p99) + " ms" : "–";
  $("in-flight").textContent = fmt(stats.in_flight) + " / " + fmt(stats.in_flight_limit);
  const shed = previous && dt > 0 ? Math.max(0, stats.shed - previous.shed) / dt : NaN;
  $("shed").textContent = fmt(shed);
  $("shed").className = "big" + (shed > 0 ? " warn" : "");
  $("writer-failures").textContent = fmt(stats.writer_failures);
  $("writer-failures").className = "big" + (stats.writer_failures > 0 ? " bad" : "");

  const pills = Object.entries(overall).sort((a, b) => b[1] - a[1]);
  $("outcomes").replaceChildren(
    ...(pills.length ? pills.map(([o, r]) => el("span", { class: "pill", "data-outcome": o, text: o + " " + fmt(r) + "/s" }))
                     : [el("span", { class: "dim", text: "no issue request yet" })]));

  const before = new Map(((previous && previous.events) || []).map((e) => [e.event_id, e]));
  const rows = stats.events.map((e) => {
    const last = before.get(e.event_id);
    const byOutcome = rates(e.outcomes, last && last.outcomes, dt);
    const share = e.daily_limit > 0 ? Math.min(1, e.issued / e.daily_limit) : 0;
    const lagClass = e.writer_lag_seconds > 5 ? "bad" : e.writer_lag_seconds > 1 ? "warn" : "";
    return el("tr", { "data-event": e.event_id }, [
      el("td", {}, [el("div", { class: "name", text: e.name }), el("div", { class: "id dim", text: e.event_id })]),
      el("td", { text: e.day }),
      el("td", { class: e.status === "open" ? "good" : e.status === "sold_out" ? "warn" : "dim", text: e.status.replace("_", " ") }),
      el("td", {}, [
        el("span", { class: "issued", "data-issued": String(e.issued), text: fmt(e.issued) }),
        el("span", { class: "dim", text: " / " + fmt(e.daily_limit) }),
        el("div", { class: "bar" }, [el("span", { style: "width:" + (share * 100).toFixed(1) + "%" })]),
      ]),
      el("td", { text: Object.entries(byOutcome).filter(([, r]) => r > 0).map(([o, r]) => o + " " + fmt(r)).join(", ") || "–" }),
      el("td", { class: lagClass, text: ms(e.writer_lag_seconds) }),
      el("td", { text: fmt(e.stream_length) }),
      el("td", { text: fmt(e.pending) }),
      el("td", { class: e.dead_letters > 0 ? "bad" : "", text: fmt(e.dead_letters) }),
    ]);
  });
  $("events").replaceChildren(...(rows.length ? rows : [el("tr", {}, [el("td", { colspan: "9", class: "dim", text: "no event on sale" })])]));

  // What each poll showed, for a person reading the DOM (and the test that does).
  polls += 1;
  const issued = stats.events.map((e) => e.issued).join(",");
  const trail = $("polls");
  trail.dataset.polls = String(polls);
  const seen = trail.dataset.issuedTrail ? trail.dataset.issuedTrail.split(";") : [];
  trail.dataset.issuedTrail = seen.concat([issued]).slice(-20).join(";");
  history.push(stats);
  if (history.length > 10) history.shift();
}

async function poll() {
  try {
    const response = await fetch("/live/stats.json", { cache: "no-store" });
    if (response.ok) render(await response.json());
  } catch (e) {
    $("clock").textContent = "cannot reach the service: " + e;
    $("clock").className = "bad";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
