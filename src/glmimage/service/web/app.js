// glmimage web UI: plain JavaScript over the same HTTP API clients use. User text is only ever set with
// textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { key: localStorage.getItem("glmimage-key") || "", config: null, parentOutput: null, roles: [] };

// Only keys with the review (or admin) role may read the review queue: others neither see the tab nor poll it.
const canReview = () => state.roles.includes("review") || state.roles.includes("admin");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  $("error").textContent = message || "";
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["Authorization"] = "Bearer " + state.key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const message = body?.error?.message || response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

// -- set-up ------------------------------------------------------------------------------------------------
async function loadConfig() {
  state.config = await api("/v1/config");
  $("model").textContent = "model: " + state.config.model_id;
  const size = $("size");
  size.replaceChildren(el("option", { value: "auto" }, "auto (model default / reference size)"));
  for (const p of state.config.size_presets) size.append(el("option", { value: p.size }, `${p.name} - ${p.size}`));
  $("n").replaceChildren(...Array.from({ length: state.config.max_images_per_request }, (_, i) =>
    el("option", { value: String(i + 1) }, String(i + 1))));
  $("use-case").replaceChildren(...state.config.use_cases.map((u) =>
    el("option", u === "default" ? { value: u, selected: "" } : { value: u }, u)));
}

async function loadMe() {
  state.roles = [];
  if (state.key) {
    try {
      const me = await api("/v1/me");
      state.roles = me.roles;
      $("whoami").textContent = `${me.name} (${me.roles.join(", ")})`;
      showError("");
    } catch (e) { $("whoami").textContent = ""; showError(e.message); }
  } else {
    $("whoami").textContent = "no key";
  }
  $("tab-review").hidden = !canReview();
  $("review-count").textContent = "";
  if (!canReview() && $("review").classList.contains("active")) openTab("create");
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  localStorage.setItem("glmimage-key", state.key);
  await loadMe();
  refreshReviewCount();
});

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => openTab(tab.dataset.tab));
}

function openTab(name) {
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.tab === name);
  for (const p of document.querySelectorAll(".panel")) p.classList.toggle("active", p.id === name);
  if (name === "gallery") loadGallery().catch((e) => showError(e.message));
  if (name === "review") loadReview().catch((e) => showError(e.message));
}

// -- badges and cards --------------------------------------------------------------------------------------
function qaBadge(output) {
  const failed = output.qa.filter((c) => !c.passed).map((c) => `${c.check}: ${c.detail}`);
  const text = output.qa_passed ? "QA pass" : "QA fail";
  const score = output.text_score === null ? "" : ` · text ${output.text_score.toFixed(2)}`;
  return el("span", { class: "badge qa-badge " + (output.qa_passed ? "pass" : "fail"),
    title: failed.join("\n") || "all checks passed" }, text + score);
}

function reviewBadge(output) {
  return el("span", { class: "badge review-badge " + output.review_status }, output.review_status.replace("_", " "));
}

function outputFigure(output, extra = []) {
  return el("figure", { class: "output", "data-output-id": String(output.id) },
    el("img", { src: output.url, alt: output.prompt, loading: "lazy" }),
    el("figcaption", {}, qaBadge(output), reviewBadge(output), ...extra));
}

function generationCard(gen) {
  const outputs = gen.outputs.map((o) => outputFigure(o, [
    el("button", { class: "small edit-this", onclick: () => startEdit(o) }, "Edit this one"),
  ]));
  const masked = gen.mask_hash ? " · masked" : "";
  const meta = `${gen.kind}${masked} · ${gen.width}x${gen.height} · seed ${gen.seed ?? "-"} · ${gen.status}`;
  return el("article", { class: "card", "data-generation-id": gen.id },
    el("div", { class: "outputs" }, ...outputs),
    el("p", { class: "prompt" }, gen.prompt),
    el("p", { class: "muted" }, meta + (gen.error ? ` · ${gen.error}` : "")),
    el("button", { class: "small rerun", onclick: () => rerun(gen.id) }, "Re-run, new seed"));
}

// -- create ------------------------------------------------------------------------------------------------
$("references").addEventListener("change", () => {
  state.parentOutput = null;
  $("parent").textContent = "";
  const previews = [...$("references").files].map((f) => el("img", { src: URL.createObjectURL(f), alt: f.name }));
  $("reference-previews").replaceChildren(...previews);
});

function startEdit(output) {
  state.parentOutput = output;
  $("references").value = "";
  $("mask").value = "";
  $("reference-previews").replaceChildren(el("img", { src: output.url, alt: "reference" }));
  $("parent").textContent = `editing output ${output.id}`;
  $("prompt").value = "";
  openTab("create");
  $("prompt").focus();
}

function commonFields() {
  const fields = { prompt: $("prompt").value, size: $("size").value, n: Number($("n").value),
    use_case: $("use-case").value };
  if ($("steps").value) fields.steps = Number($("steps").value);
  if ($("seed").value) fields.seed = Number($("seed").value);
  return fields;
}

async function submitJob() {
  const fields = commonFields();
  const files = [...$("references").files];
  const mask = $("mask").files[0];
  if (mask && !files.length) throw new Error("a mask needs an uploaded reference image to edit");
  if (state.parentOutput) {
    return api(`/v1/outputs/${state.parentOutput.id}/edits`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(fields) });
  }
  if (files.length) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
    for (const f of files) form.append("image", f);
    if (mask) {
      form.append("mask", mask);
      form.set("size", "auto"); // a masked edit keeps the reference's size
    }
    return api("/v1/jobs/edits", { method: "POST", body: form });
  }
  return api("/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(fields) });
}

async function waitForJob(job) {
  while (job.status === "queued" || job.status === "running") {
    $("job-status").textContent = `job ${job.id.slice(0, 8)}: ${job.status}`;
    await new Promise((resolve) => setTimeout(resolve, 400));
    job = await api(`/v1/jobs/${job.id}`);
  }
  return job;
}

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  $("submit").disabled = true;
  try {
    const job = await waitForJob(await submitJob());
    $("job-status").textContent = `job ${job.id.slice(0, 8)}: ${job.status}` + (job.error ? ` (${job.error})` : "");
    $("result").replaceChildren(generationCard(job));
    refreshReviewCount();
  } catch (e) {
    $("job-status").textContent = "";
    showError(e.message);
  } finally {
    $("submit").disabled = false;
  }
});

async function rerun(id) {
  try {
    const job = await waitForJob(await api(`/v1/generations/${id}/rerun`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: "{}" }));
    await loadGallery();
    return job;
  } catch (e) { showError(e.message); }
}

// -- gallery -----------------------------------------------------------------------------------------------
async function loadGallery() {
  const params = new URLSearchParams({ limit: "30" });
  if ($("search").value.trim()) params.set("q", $("search").value.trim());
  if ($("filter-review").value) params.set("review_status", $("filter-review").value);
  const list = await api("/v1/generations?" + params);
  $("gallery-grid").replaceChildren(...list.data.map(generationCard));
  if (!list.data.length) $("gallery-grid").append(el("p", { class: "muted" }, "Nothing yet."));
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadGallery().catch((e) => showError(e.message));
});

// -- review ------------------------------------------------------------------------------------------------
async function refreshReviewCount() {
  if (!state.key || !canReview()) return;
  try {
    const queue = await api("/v1/review/queue?limit=1");
    $("review-count").textContent = queue.total ? `(${queue.total})` : "";
  } catch (e) { $("review-count").textContent = ""; }
}

async function decide(output, decision) {
  try {
    await api(`/v1/outputs/${output.id}/review`, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ decision }) });
    await loadReview();
  } catch (e) { showError(e.message); }
}

async function loadReview() {
  const queue = await api("/v1/review/queue?limit=50");
  $("review-count").textContent = queue.total ? `(${queue.total})` : "";
  const cards = queue.data.map((o) => el("article", { class: "card review-card", "data-output-id": String(o.id) },
    outputFigure(o),
    el("p", { class: "prompt" }, o.prompt),
    el("ul", { class: "reasons" }, ...o.review_reasons.map((r) => el("li", {}, r))),
    el("div", { class: "row" },
      el("button", { class: "approve", onclick: () => decide(o, "approve") }, "Approve"),
      el("button", { class: "reject", onclick: () => decide(o, "reject") }, "Reject"))));
  $("review-grid").replaceChildren(...cards);
  if (!cards.length) $("review-grid").append(el("p", { class: "muted" }, "Nothing waits for review."));
}

// -- start -------------------------------------------------------------------------------------------------
$("api-key").value = state.key;
loadConfig().catch((e) => showError(e.message));
loadMe().then(refreshReviewCount);
