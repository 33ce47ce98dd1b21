// The rater's page (/rate): fetches the next task, lets the rater rank its responses (keyboard,
// click, or drag), answer its questions, flag broken rules and write a note, then submits the label.
// Parts: the ranking model (`ranking`, `place`, `unplace`), rendering (`renderTask` and helpers),
// pointer drag-and-drop (`startDrag`), keyboard shortcuts (`onKey`), the draft kept in
// sessionStorage per assignment (so a reload or a failed submit loses nothing), and the
// load/submit cycle with its states (task, none left = 204, screened out = 403, errors).
// Task text is only ever inserted as text nodes (see `el` in common.js).

import {
  ApiError,
  NetworkError,
  api,
  describeError,
  el,
  getToken,
  isTyping,
  replace,
  showError,
  wireSignOut,
} from "./common.js";

const NOTE_LIMIT = 2000;
const ORDINALS = ["1st", "2nd", "3rd"];

/** The open assignment as the server sent it (null while none is shown). */
let current = null;
/** Place p (0 = best) -> position of the response in `current.task.responses`, or null. */
let ranking = [];
let submitting = false;

const $ = (id) => document.getElementById(id);

function letter(position) {
  return String.fromCharCode(65 + position);
}

function ordinal(place) {
  return ORDINALS[place] || `${place + 1}th`;
}

function responseCount() {
  return current ? current.task.responses.length : 0;
}

function isPair() {
  return current !== null && current.task.mode === "pair";
}

// ---- The ranking model ----------------------------------------------------------------------

function placeOf(position) {
  return ranking.indexOf(position);
}

/**
 * Puts response `position` at `place`, as in a list: it leaves its old place, and the responses
 * between the target and the nearest empty place shift by one. Ranking K-1 responses places the
 * last one in the remaining place.
 */
function place(position, target) {
  const k = responseCount();
  if (target < 0 || target >= k) return;
  const old = placeOf(position);
  if (old === target) return;
  if (old !== -1) ranking[old] = null;
  if (ranking[target] !== null) {
    let empty = -1;
    for (let distance = 1; distance < k && empty === -1; distance += 1) {
      if (target + distance < k && ranking[target + distance] === null) empty = target + distance;
      else if (target - distance >= 0 && ranking[target - distance] === null) empty = target - distance;
    }
    if (empty > target) {
      for (let p = empty; p > target; p -= 1) ranking[p] = ranking[p - 1];
    } else {
      for (let p = empty; p < target; p += 1) ranking[p] = ranking[p + 1];
    }
  }
  ranking[target] = position;
  const unranked = [...Array(k).keys()].filter((r) => placeOf(r) === -1);
  if (unranked.length === 1) ranking[ranking.indexOf(null)] = unranked[0];
  changed();
}

/** Takes response `position` out of the ranking. */
function unplace(position) {
  const old = placeOf(position);
  if (old === -1) return;
  ranking[old] = null;
  changed();
}

/** Pair mode: response `position` is the better one. */
function choose(position) {
  ranking = [position, 1 - position];
  changed();
}

// ---- The form's state -----------------------------------------------------------------------

function answers() {
  const out = {};
  current.task.questions.forEach((question, q) => {
    const picked = document.querySelector(`input[name="q${q}"]:checked`);
    if (picked) out[question.id] = question.choices[Number(picked.value)];
  });
  return out;
}

function violations() {
  const out = [];
  for (const box of document.querySelectorAll("input.rule:checked")) {
    const response = current.task.responses[Number(box.dataset.response)];
    const rule = current.task.rules[Number(box.dataset.rule)];
    out.push({ response: response.index, rule: rule.id });
  }
  return out;
}

/** What still blocks submission, as short phrases (empty when the label is complete). */
function missing() {
  const out = [];
  const unranked = ranking.filter((slot) => slot === null).length;
  if (isPair() && unranked > 0) out.push("choose the better response");
  else if (unranked > 0) out.push(`rank ${unranked} more response${unranked === 1 ? "" : "s"}`);
  const unanswered = current.task.questions.length - Object.keys(answers()).length;
  if (unanswered > 0) out.push(`answer ${unanswered} more question${unanswered === 1 ? "" : "s"}`);
  return out;
}

function labelBody() {
  return {
    assignment_id: current.assignment_id,
    ranking: ranking.map((position) => current.task.responses[position].index),
    answers: answers(),
    violations: violations(),
    note: $("note").value,
  };
}

// ---- The draft (sessionStorage, per assignment) ---------------------------------------------

function draftKey() {
  return `rlhf-label-draft:${current.assignment_id}`;
}

function saveDraft() {
  const draft = {
    ranking,
    answers: answers(),
    violations: [...document.querySelectorAll("input.rule:checked")].map((box) => [
      Number(box.dataset.response),
      Number(box.dataset.rule),
    ]),
    note: $("note").value,
  };
  sessionStorage.setItem(draftKey(), JSON.stringify(draft));
}

function restoreDraft() {
  let draft = null;
  try {
    draft = JSON.parse(sessionStorage.getItem(draftKey()) || "null");
  } catch {
    draft = null;
  }
  if (!draft) return;
  const k = responseCount();
  const valid =
    Array.isArray(draft.ranking) &&
    draft.ranking.length === k &&
    draft.ranking.every((slot) => slot === null || (Number.isInteger(slot) && slot >= 0 && slot < k));
  if (valid) ranking = draft.ranking;
  current.task.questions.forEach((question, q) => {
    const choice = draft.answers ? question.choices.indexOf(draft.answers[question.id]) : -1;
    const input = document.querySelector(`input[name="q${q}"][value="${choice}"]`);
    if (input) input.checked = true;
  });
  for (const [response, rule] of draft.violations || []) {
    const box = document.querySelector(`input.rule[data-response="${response}"][data-rule="${rule}"]`);
    if (box) box.checked = true;
  }
  if (typeof draft.note === "string") $("note").value = draft.note.slice(0, NOTE_LIMIT);
}

// ---- Rendering ------------------------------------------------------------------------------

function renderTask(assignment) {
  current = assignment;
  const { task } = assignment;
  const k = task.responses.length;
  ranking = Array(k).fill(null);
  submitting = false;

  showError($("submit-error"), "");
  $("prompt").textContent = task.prompt;
  $("mode-hint").textContent = isPair()
    ? "Pick the better response: press A or B (or ← / →), click “… is better”, or drag it to the first place."
    : `Rank all ${k} responses, 1 = best: focus a response and press 1–${k}, click a rank button, or drag it onto a place below.`;
  replace($("responses"), task.responses.map((response, position) => responseCard(response, position)));
  $("responses").classList.toggle("pair", isPair());
  replace($("questions"), task.questions.map((question, q) => questionGroup(question, q)));
  $("questions-card").hidden = task.questions.length === 0;
  $("note").value = "";
  $("instructions").textContent = assignment.instructions || "No instructions were given for this task.";
  const examples = assignment.examples || [];
  replace(
    $("examples"),
    examples.length === 0
      ? el("p", { class: "hint", text: "No examples." })
      : examples.map((example) =>
          el("article", { class: "example" }, el("h3", { text: example.title }), el("p", { class: "text", text: example.text })),
        ),
  );
  $("examples-box").hidden = examples.length === 0;
  restoreDraft();
  showProgress(assignment.progress);
  showState(null);
  $("workspace").hidden = false;
  changed({ save: false });
  // A new task starts at the top with the first response focused, so the keys work at once
  // (and keys meant for it never land in the previous task's note).
  window.scrollTo(0, 0);
  document.querySelector("#responses .response").focus({ preventScroll: true });
}

function responseCard(response, position) {
  const name = `Response ${letter(position)}`;
  const headingId = `response-${position}-title`;
  const handle = el(
    "header",
    { class: "handle", title: "Drag onto a place in “Your ranking”" },
    el("span", { class: "grip", "aria-hidden": "true", text: "⠿" }),
    el("h3", { id: headingId, text: name }),
    el("span", { class: "badge", "data-badge": position, text: "not ranked" }),
  );
  handle.addEventListener("pointerdown", (event) => startDrag(event, position));

  const controls = isPair()
    ? el("button", { type: "button", class: "choose", "data-choose": position, onclick: () => choose(position) }, `${letter(position)} is better`)
    : el(
        "div",
        { class: "rank-buttons", role: "group", "aria-label": `Rank of ${name}` },
        ...[...Array(responseCount()).keys()].map((p) =>
          el("button", {
            type: "button",
            "data-place": p,
            "aria-pressed": "false",
            "aria-label": `${name}: rank ${p + 1}`,
            onclick: () => (placeOf(position) === p ? unplace(position) : place(position, p)),
            text: String(p + 1),
          }),
        ),
      );

  const rules = current.task.rules;
  const ruleBoxes =
    rules.length === 0
      ? null
      : el(
          "fieldset",
          { class: "rules" },
          el("legend", { text: "Rules it breaks" }),
          ...rules.map((rule, r) => {
            const id = `rule-${position}-${r}`;
            return el(
              "div",
              { class: "check" },
              el("input", { type: "checkbox", id, class: "rule", "data-response": position, "data-rule": r }),
              el("label", { for: id, text: rule.text }),
            );
          }),
        );

  return el(
    "article",
    { class: "response", tabindex: "0", "data-response": position, "aria-labelledby": headingId },
    handle,
    el("p", { class: "text", text: response.text }),
    el("div", { class: "card-controls" }, controls),
    ruleBoxes,
  );
}

function questionGroup(question, q) {
  return el(
    "fieldset",
    { class: "question" },
    el("legend", { text: question.text }),
    el(
      "div",
      { class: "choices" },
      ...question.choices.map((choice, c) => {
        const id = `q${q}-c${c}`;
        return el(
          "div",
          { class: "choice" },
          el("input", { type: "radio", id, name: `q${q}`, value: c }),
          el("label", { for: id, text: choice }),
        );
      }),
    ),
  );
}

function renderRanking() {
  const k = responseCount();
  const slots = [...Array(k).keys()].map((p) => {
    const position = ranking[p];
    const label = isPair() ? (p === 0 ? "Better" : "Worse") : ordinal(p);
    if (position === null) {
      return el(
        "li",
        { class: "slot empty", "data-slot": p },
        el("span", { class: "place", text: label }),
        el("span", { class: "hint", text: "drop a response here" }),
      );
    }
    const text = current.task.responses[position].text;
    const item = el(
      "li",
      {
        class: "slot filled",
        "data-slot": p,
        "data-response": position,
        tabindex: "0",
        "aria-label": `${label}: Response ${letter(position)}`,
      },
      el("span", { class: "place", text: label }),
      el("strong", { text: `Response ${letter(position)}` }),
      el("span", { class: "excerpt", text: text.length > 90 ? `${text.slice(0, 90)}…` : text }),
    );
    item.addEventListener("pointerdown", (event) => startDrag(event, position));
    return item;
  });
  const focusedSlot = document.activeElement && document.activeElement.closest ? document.activeElement.closest("#ranking [data-response]") : null;
  const refocus = focusedSlot ? Number(focusedSlot.dataset.response) : null;
  replace($("ranking"), slots);
  if (refocus !== null) {
    const again = document.querySelector(`#ranking [data-response="${refocus}"]`);
    if (again) again.focus();
  }
  $("ranking-hint").textContent = isPair()
    ? "The better response comes first."
    : "Drag a place to another place to reorder, or focus it and use ↑ / ↓.";
}

/** Updates everything that depends on the ranking and the answers; saves the draft. */
function changed(options = { save: true }) {
  if (!current) return;
  renderRanking();
  for (const card of document.querySelectorAll("#responses .response")) {
    const position = Number(card.dataset.response);
    const p = placeOf(position);
    const badge = card.querySelector("[data-badge]");
    badge.textContent = p === -1 ? "not ranked" : isPair() ? (p === 0 ? "better" : "worse") : `ranked ${ordinal(p)}`;
    card.classList.toggle("ranked", p !== -1);
    card.classList.toggle("best", p === 0);
    for (const button of card.querySelectorAll("[data-place]")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.place) === p));
    }
    const chooser = card.querySelector("[data-choose]");
    if (chooser) chooser.setAttribute("aria-pressed", String(p === 0));
  }
  const note = $("note").value.length;
  $("note-count").textContent = `${note} / ${NOTE_LIMIT}`;
  $("note-count").classList.toggle("near-limit", note > NOTE_LIMIT * 0.9);
  const blockers = missing();
  $("submit").disabled = submitting || blockers.length > 0;
  $("missing").textContent = blockers.length > 0 ? `To submit: ${blockers.join("; ")}.` : "Ready to submit.";
  if (options.save !== false) saveDraft();
}

function showProgress(progress) {
  if (!progress) return;
  $("progress").textContent = `Done ${progress.done} · available ${progress.available}`;
}

/** Shows one of the full-page states (or none, for the task view). */
function showState(state) {
  const box = $("state");
  if (!state) {
    box.hidden = true;
    return;
  }
  current = null;
  $("workspace").hidden = true;
  box.dataset.state = state.name;
  $("state-title").textContent = state.title;
  $("state-text").textContent = state.text;
  const retry = $("state-retry");
  retry.hidden = !state.retry;
  retry.textContent = state.retryLabel || "Try again";
  retry.onclick = state.retry || null;
  box.hidden = false;
  if (state.retry) retry.focus();
}

function flash(message) {
  const box = $("flash");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => {
    box.hidden = true;
  }, 4000);
}

// ---- Pointer drag-and-drop (mouse, pen and touch alike) ---------------------------------------

function startDrag(event, position) {
  if (event.button !== 0 || event.target.closest("button, input, label, textarea, a")) return;
  const source = event.currentTarget;
  const origin = { x: event.clientX, y: event.clientY };
  let ghost = null;
  let over = null;
  source.setPointerCapture(event.pointerId);
  const move = (e) => {
    if (!ghost) {
      if (Math.hypot(e.clientX - origin.x, e.clientY - origin.y) < 6) return;
      ghost = el("div", { class: "drag-ghost", "aria-hidden": "true", text: `Response ${letter(position)}` });
      document.body.append(ghost);
      document.body.classList.add("dragging");
    }
    ghost.style.transform = `translate(${e.clientX + 10}px, ${e.clientY + 10}px)`;
    const hit = document.elementFromPoint(e.clientX, e.clientY);
    const slot = hit ? hit.closest("#ranking [data-slot]") : null;
    if (slot !== over) {
      if (over) over.classList.remove("drop-target");
      over = slot;
      if (over) over.classList.add("drop-target");
    }
  };
  const end = (e) => {
    source.removeEventListener("pointermove", move);
    source.removeEventListener("pointerup", end);
    source.removeEventListener("pointercancel", end);
    document.body.classList.remove("dragging");
    if (ghost) ghost.remove();
    if (over) over.classList.remove("drop-target");
    if (ghost && over && e.type === "pointerup") {
      if (isPair()) {
        if (Number(over.dataset.slot) === 0) choose(position);
        else choose(1 - position);
      } else {
        place(position, Number(over.dataset.slot));
      }
    }
  };
  source.addEventListener("pointermove", move);
  source.addEventListener("pointerup", end);
  source.addEventListener("pointercancel", end);
}

// ---- Keyboard shortcuts -----------------------------------------------------------------------

function toggleHelp(show) {
  const help = $("help");
  const visible = show ?? help.hidden;
  help.hidden = !visible;
  $("help-toggle").setAttribute("aria-expanded", String(visible));
}

function focusedResponse(target) {
  const holder = target instanceof Element ? target.closest("[data-response]") : null;
  return holder ? Number(holder.dataset.response) : null;
}

function onKey(event) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    submit();
    return;
  }
  if (isTyping(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === "?") {
    event.preventDefault();
    toggleHelp();
    return;
  }
  if (event.key === "Escape" && !$("help").hidden) {
    toggleHelp(false);
    return;
  }
  if (!current) return;
  const tag = event.target instanceof Element ? event.target.tagName : "";
  if (event.key === "Enter" && !["BUTTON", "A", "SUMMARY"].includes(tag)) {
    event.preventDefault();
    submit();
    return;
  }
  if (isPair()) {
    const key = event.key.toLowerCase();
    if (key === "a" || event.key === "ArrowLeft") choose(0);
    else if (key === "b" || event.key === "ArrowRight") choose(1);
    else return;
    event.preventDefault();
    return;
  }
  const position = focusedResponse(event.target);
  if (position === null) return;
  const k = responseCount();
  const p = placeOf(position);
  if (/^[1-9]$/.test(event.key) && Number(event.key) <= k) place(position, Number(event.key) - 1);
  else if (event.key === "0" || event.key === "Backspace" || event.key === "Delete") unplace(position);
  else if (event.key === "ArrowUp") place(position, p === -1 ? ranking.indexOf(null) : p - 1);
  else if (event.key === "ArrowDown") place(position, p === -1 ? ranking.indexOf(null) : p + 1);
  else return;
  event.preventDefault();
}

// ---- Loading and submitting -------------------------------------------------------------------

async function loadMe() {
  try {
    const { data } = await api("/api/me");
    $("who").textContent = `${data.name} (${data.rater_id})`;
    return data;
  } catch {
    return null; // the task request below reports the problem
  }
}

async function loadNext() {
  showError($("error"), "");
  try {
    const { status, data } = await api("/api/task/next");
    if (status === 204 || data === null) {
      const me = await loadMe();
      if (me) $("progress").textContent = `Done ${me.labels} · available 0`;
      showState({
        name: "empty",
        title: "No tasks left",
        text: "Thank you — every task available to you is labeled. New tasks may arrive later.",
        retry: loadNext,
        retryLabel: "Check again",
      });
      return;
    }
    renderTask(data);
  } catch (error) {
    showLoadError(error, loadNext);
  }
}

function showLoadError(error, retry) {
  if (error instanceof ApiError && error.status === 403) {
    showState({
      name: "screened",
      title: "No more tasks for you",
      text: "Your account no longer receives tasks (screened out by the quality checks). Thank you for your work; contact the researcher if you think this is a mistake.",
    });
  } else if (error instanceof ApiError && error.status === 401) {
    showState({
      name: "unauthorised",
      title: "Not signed in",
      text: describeError(error),
      retry: () => window.location.assign("/"),
      retryLabel: "Go to sign in",
    });
  } else {
    showState({ name: "error", title: "Could not load a task", text: describeError(error), retry, retryLabel: "Try again" });
  }
}

async function submit() {
  if (!current || submitting || missing().length > 0) return;
  submitting = true;
  $("submit").disabled = true;
  $("submit").classList.add("busy");
  showError($("submit-error"), "");
  const body = labelBody();
  const key = draftKey();
  try {
    const { data } = await api("/api/label", { method: "POST", body });
    sessionStorage.removeItem(key);
    flash(data && data.duplicate ? `Already saved as label #${data.label_id}.` : `Saved as label #${data.label_id}.`);
    await loadNext();
  } catch (error) {
    submitting = false;
    if (error instanceof ApiError && (error.status === 403 || error.status === 401)) {
      showLoadError(error, loadNext);
    } else if (error instanceof ApiError && error.status === 404) {
      sessionStorage.removeItem(key);
      showState({
        name: "gone",
        title: "This task is no longer yours",
        text: `The server does not know this assignment (${error.message}).`,
        retry: loadNext,
        retryLabel: "Load the next task",
      });
    } else {
      const transient = error instanceof NetworkError || (error instanceof ApiError && error.status >= 500);
      showError(
        $("submit-error"),
        transient
          ? `${describeError(error)} Your label was not confirmed; press Submit to send it again (it is never counted twice).`
          : describeError(error),
      );
      $("submit-error").scrollIntoView({ block: "nearest" });
      changed({ save: false });
    }
  } finally {
    $("submit").classList.remove("busy");
  }
}

function init() {
  wireSignOut();
  if (!getToken()) {
    window.location.assign("/");
    return;
  }
  document.addEventListener("keydown", onKey);
  $("help-toggle").addEventListener("click", () => toggleHelp());
  $("help-close").addEventListener("click", () => toggleHelp(false));
  $("task-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("task-form").addEventListener("change", () => changed());
  $("note").addEventListener("input", () => changed());
  loadMe();
  loadNext();
}

init();
