// The researcher's page (/admin): progress, per-rater accuracy against the hidden gold items with
// Wilson intervals, agreement coefficients, Elo / Bradley–Terry standings per task, a form that
// issues rater tokens, and export downloads. Everything refreshes every few seconds while the tab
// is visible; all server text is inserted as text nodes.

import { ApiError, api, describeError, el, fmt, getToken, replace, saveBlob, showError, svg, wireSignOut } from "./common.js";

const REFRESH_MS = 5000;
const EXPORTS = [
  { format: "hh", file: "labels-hh.jsonl", title: "HH-RLHF (chosen / rejected transcripts)" },
  { format: "trl", file: "labels-trl.jsonl", title: "TRL (prompt / chosen / rejected)" },
  { format: "kway", file: "labels-kway.jsonl", title: "K-way rankings with answers and rule violations" },
  { format: "labels-csv", file: "labels.csv", title: "Long-format table item,rater,label" },
];
const BAR_WIDTH = 120; // px: the Wilson bar's scale, accuracy 0..1

const $ = (id) => document.getElementById(id);
let paused = false;
let timer = null;
/** Task ids whose standings table is open, kept across refreshes. */
const openStandings = new Set();

function numbers(list, pairs) {
  replace(
    list,
    pairs.map(([term, value]) => el("div", { class: "number" }, el("dt", { text: term }), el("dd", { text: value }))),
  );
}

function renderProgress(progress) {
  numbers($("progress-numbers"), [
    ["Tasks", progress.tasks],
    ["Gold tasks", progress.gold_tasks],
    ["Labels", progress.labels],
    ["Target per task", progress.target_per_task],
    ["Complete tasks", progress.complete_tasks],
    ["Raters (active)", `${progress.raters} (${progress.active_raters})`],
  ]);
  const bar = $("progress-bar");
  bar.max = Math.max(progress.tasks, 1);
  bar.value = progress.complete_tasks;
  $("progress-caption").textContent = `Tasks complete: ${progress.complete_tasks} of ${progress.tasks}`;
}

function renderAgreement(agreement) {
  numbers($("agreement"), [
    ["Items with ≥ 2 labels", agreement.items ?? "—"],
    ["Krippendorff’s α (ordinal)", fmt(agreement.krippendorff_alpha_ordinal, 3)],
    ["Fleiss’ κ (top choice)", fmt(agreement.fleiss_kappa_top1, 3)],
    ["Percent agreement (top choice)", percent(agreement.percent_agreement_top1)],
  ]);
}

function percent(share) {
  return typeof share === "number" ? `${fmt(share * 100, 1)} %` : "—";
}

/** A small SVG: the track 0..1, the Wilson interval as a bar, the accuracy as a dot. */
function wilsonBar(rater) {
  const ok = [rater.gold_accuracy, rater.gold_ci_low, rater.gold_ci_high].every((v) => typeof v === "number");
  if (!ok) return el("span", { class: "hint", text: "no gold yet" });
  const x = (v) => Math.min(Math.max(v, 0), 1) * BAR_WIDTH;
  const label = `accuracy ${fmt(rater.gold_accuracy)}, 95% interval ${fmt(rater.gold_ci_low)} to ${fmt(rater.gold_ci_high)}`;
  const picture = svg("svg", { width: BAR_WIDTH + 8, height: 16, viewBox: `-4 0 ${BAR_WIDTH + 8} 16`, role: "img", "aria-label": label, class: "wilson" });
  const title = svg("title");
  title.textContent = label;
  picture.append(
    title,
    svg("rect", { class: "track", x: 0, y: 7, width: BAR_WIDTH, height: 2 }),
    svg("rect", { class: "interval", x: x(rater.gold_ci_low), y: 4, width: Math.max(x(rater.gold_ci_high) - x(rater.gold_ci_low), 1), height: 8, rx: 2 }),
    svg("circle", { class: "point", cx: x(rater.gold_accuracy), cy: 8, r: 3.5 }),
  );
  return picture;
}

function renderRaters(raters) {
  const rows = raters.map((rater) =>
    el(
      "tr",
      { class: `status-${String(rater.status).replace(/[^a-z_]/g, "")}` },
      el("td", { text: rater.rater_id }),
      el("td", { text: rater.name }),
      el("td", {}, el("span", { class: "status", text: String(rater.status).replace("_", " ") })),
      el("td", { class: "num", text: rater.labels }),
      el("td", { class: "num", text: `${rater.gold_correct ?? 0}/${rater.gold_n ?? 0}` }),
      el("td", { class: "num", text: fmt(rater.gold_accuracy) }),
      el("td", {}, wilsonBar(rater)),
      el("td", { class: "num", text: fmt(rater.agreement) }),
    ),
  );
  const body = $("raters").tBodies[0];
  if (rows.length === 0) {
    replace(body, el("tr", {}, el("td", { colspan: 8, class: "hint", text: "No raters yet: add one below." })));
  } else {
    replace(body, rows);
  }
}

/** The letter the rater page shows for response `index` (A = 0). */
function responseLetter(index) {
  return index < 26 ? String.fromCharCode(65 + index) : `#${index}`;
}

function renderStandings(standings) {
  const tasks = standings.tasks || [];
  if (tasks.length === 0) {
    replace($("standings"), el("p", { class: "hint", text: "No labels yet." }));
    return;
  }
  replace(
    $("standings"),
    tasks.map((task) => {
      const candidates = [...task.candidates].sort((a, b) => b.elo - a.elo);
      const box = el(
        "details",
        { class: "standing", open: openStandings.has(task.task_id) },
        el("summary", {}, el("span", { class: "task-id", text: task.task_id }), el("span", { class: "excerpt", text: task.prompt })),
        el(
          "table",
          {},
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              ...["Response", "Elo", "Bradley–Terry", "Wins", "Losses"].map((h, i) => el("th", { scope: "col", class: i > 0 ? "num" : null, text: h })),
            ),
          ),
          el(
            "tbody",
            {},
            ...candidates.map((c) =>
              el(
                "tr",
                {},
                el("td", { text: `${responseLetter(c.index)} (#${c.index})` }),
                el("td", { class: "num", text: fmt(c.elo, 0) }),
                el("td", { class: "num", text: fmt(c.bt_score, 3) }),
                el("td", { class: "num", text: c.wins }),
                el("td", { class: "num", text: c.losses }),
              ),
            ),
          ),
        ),
      );
      box.addEventListener("toggle", () => {
        if (box.open) openStandings.add(task.task_id);
        else openStandings.delete(task.task_id);
      });
      return box;
    }),
  );
}

async function refresh() {
  clearTimeout(timer);
  try {
    const [progress, raters, agreement, standings] = await Promise.all(
      ["/api/admin/progress", "/api/admin/raters", "/api/admin/agreement", "/api/admin/standings"].map((path) => api(path)),
    );
    renderProgress(progress.data);
    renderRaters(raters.data);
    renderAgreement(agreement.data);
    renderStandings(standings.data);
    showError($("error"), "");
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) {
      showError($("error"), "This token is a rater's token, not the researcher's. Sign out and use the admin token.");
      return; // no point polling
    }
    showError($("error"), `${describeError(error)} Retrying every ${REFRESH_MS / 1000} s.`);
  }
  schedule();
}

function schedule() {
  clearTimeout(timer);
  if (!paused && !document.hidden) timer = setTimeout(refresh, REFRESH_MS);
}

async function addRater(event) {
  event.preventDefault();
  const input = $("rater-name");
  const name = input.value.trim();
  showError($("add-error"), "");
  if (!name) {
    showError($("add-error"), "Give the rater a name.");
    return;
  }
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { data } = await api("/api/admin/raters", { method: "POST", body: { name } });
    $("new-token-who").textContent = `${name} (${data.rater_id})`;
    $("new-token-value").value = data.token;
    $("new-token").hidden = false;
    $("new-token-value").select();
    input.value = "";
    refresh();
  } catch (error) {
    showError($("add-error"), describeError(error));
  } finally {
    button.disabled = false;
  }
}

async function copyToken() {
  const field = $("new-token-value");
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    $("copy-token").textContent = "Copied";
  } catch {
    $("copy-token").textContent = "Press Ctrl+C";
  }
}

async function download(item, button) {
  showError($("export-error"), "");
  button.disabled = true;
  try {
    const { response } = await api(`/api/admin/export?format=${encodeURIComponent(item.format)}`, { raw: true });
    saveBlob(await response.blob(), item.file);
  } catch (error) {
    showError($("export-error"), `Export ${item.format}: ${describeError(error)}`);
  } finally {
    button.disabled = false;
  }
}

function init() {
  wireSignOut();
  if (!getToken()) {
    window.location.assign("/");
    return;
  }
  replace(
    $("exports"),
    EXPORTS.map((item) => {
      const button = el("button", { type: "button", "data-format": item.format, title: item.title }, `${item.format} · ${item.file}`);
      button.addEventListener("click", () => download(item, button));
      return button;
    }),
  );
  $("add-rater").addEventListener("submit", addRater);
  $("copy-token").addEventListener("click", copyToken);
  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").setAttribute("aria-pressed", String(paused));
    $("pause").textContent = paused ? "Resume updates" : "Pause updates";
    if (paused) clearTimeout(timer);
    else refresh();
  });
  document.addEventListener("visibilitychange", () => (document.hidden ? clearTimeout(timer) : refresh()));
  refresh();
}

init();
