// meshpilot web chat: paste a key, ask, read the streamed answer, open its citations; or upload data
// to the copilot, read its checks and drafted contract, and approve or reject the draft.
// Everything the server sends is inserted as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_SLOT = "meshpilot.key"; // sessionStorage: the key lives as long as this tab
let answers = 0;
let currentThread = null;

function apiKey() {
  return sessionStorage.getItem(KEY_SLOT) || "";
}

function headers(extra) {
  return Object.assign({ Authorization: "Bearer " + apiKey() }, extra || {});
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error.code + ": " + body.error.message;
  } catch (_) {
    // not JSON: fall through to the status line
  }
  return "HTTP " + response.status;
}

function setStatus(text, isError) {
  const status = $("key-status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

async function useKey(event) {
  if (event) event.preventDefault();
  const key = $("key").value.trim();
  if (key) sessionStorage.setItem(KEY_SLOT, key);
  if (!apiKey()) return;
  const response = await fetch("/v1/knowledge-products", { headers: headers() });
  if (!response.ok) {
    setStatus(await errorText(response), true);
    return;
  }
  const { products } = await response.json();
  const select = $("product");
  select.replaceChildren(new Option("All products I may read", ""));
  for (const p of products) select.append(new Option(p.name + " (" + p.classification + ")", p.name));
  setStatus("key accepted: " + products.length + " products readable");
  $("key").value = "";
}

function addMessage(kind, text, log) {
  const div = document.createElement("div");
  div.className = "msg " + kind;
  if (text !== undefined) div.textContent = text;
  (log || $("log")).append(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function openCitation(item) {
  for (const other of item.parentElement.children) other.classList.remove("active");
  item.classList.add("active", "open");
  item.scrollIntoView({ block: "nearest" });
}

// The final answer: [n] markers become links to their citations, listed under the text.
function renderAnswer(box, result) {
  const id = ++answers;
  box.classList.add("done");
  box.classList.toggle("refusal", !result.grounded);
  const text = box.querySelector(".text");
  text.replaceChildren();
  const items = new Map();
  const list = document.createElement("ol");
  list.className = "citations";
  for (const c of result.citations) {
    const li = document.createElement("li");
    li.id = "cite-" + id + "-" + c.n;
    const head = document.createElement("a");
    head.className = "source";
    head.href = "#" + li.id;
    head.textContent = "[" + c.n + "] " + c.product + "/" + c.source;
    head.addEventListener("click", (e) => { e.preventDefault(); li.classList.toggle("open"); });
    const quote = document.createElement("blockquote");
    quote.textContent = c.quote;
    li.append(head, quote);
    list.append(li);
    items.set(String(c.n), li);
  }
  for (const part of result.answer.split(/(\[\d+\])/)) {
    const n = /^\[(\d+)\]$/.exec(part);
    if (n && items.has(n[1])) {
      const link = document.createElement("a");
      link.className = "cite";
      link.href = "#" + items.get(n[1]).id;
      link.textContent = part;
      link.addEventListener("click", (e) => { e.preventDefault(); openCitation(items.get(n[1])); });
      text.append(link);
    } else {
      text.append(document.createTextNode(part));
    }
  }
  if (result.citations.length) box.append(list);
}

// Server-Sent Events over fetch (EventSource cannot send the Authorization header).
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  if (!apiKey()) {
    setStatus("paste an API key first", true);
    return;
  }
  addMessage("question", question);
  $("question").value = "";
  $("ask").disabled = true;
  const box = addMessage("answer");
  const text = document.createElement("div");
  text.className = "text";
  box.append(text);
  try {
    const body = { question, stream: true };
    if ($("product").value) body.product = $("product").value;
    const response = await fetch("/v1/ask", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      box.className = "msg error";
      box.textContent = await errorText(response);
      return;
    }
    await readEvents(response, (name, data) => {
      if (name === "answer.delta") text.textContent += data.text;
      else if (name === "answer.done") renderAnswer(box, data);
    });
  } catch (err) {
    box.className = "msg error";
    box.textContent = "request failed: " + err;
  } finally {
    $("ask").disabled = false;
    box.scrollIntoView({ block: "end" });
  }
}

function showTab(name) {
  for (const tab of ["ask", "copilot"]) {
    $("tab-" + tab).setAttribute("aria-selected", String(tab === name));
    $(tab + "-panel").hidden = tab !== name;
  }
}

// ---------------------------------------------------------------- copilot
function draftStatus(text, isError) {
  const status = $("draft-status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function renderThread(thread) {
  currentThread = thread.thread;
  $("thread").hidden = false;
  $("thread").dataset.status = thread.status;
  $("thread-title").textContent = thread.domain + "/" + thread.name + ": " + thread.status.replace(/_/g, " ");
  $("thread-message").textContent = thread.message;
  $("decision").hidden = thread.status !== "awaiting_approval";
  const checks = $("checks");
  checks.replaceChildren();
  for (const c of thread.checks) {
    const li = document.createElement("li");
    li.className = c.passed ? "pass" : "fail";
    li.textContent = (c.passed ? "✓ " : "✗ ") + c.name + ": " + c.reason;
    checks.append(li);
  }
  const artifacts = $("artifacts");
  artifacts.replaceChildren();
  for (const path of thread.artifacts) {
    const li = document.createElement("li");
    li.textContent = path;
    artifacts.append(li);
  }
  $("contract").textContent = thread.files["datacontract.odcs.yaml"] || "(no contract drafted)";
}

async function draft(event) {
  event.preventDefault();
  if (!apiKey()) {
    draftStatus("paste an API key first", true);
    return;
  }
  const file = $("draft-file").files[0];
  const form = new FormData();
  form.append("name", $("draft-name").value.trim());
  form.append("domain", $("draft-domain").value.trim());
  form.append("owner", $("draft-owner").value.trim());
  form.append("file", file, file.name);
  $("draft").disabled = true;
  draftStatus("drafting and validating " + file.name + "…");
  try {
    const response = await fetch("/v1/copilot/threads", { method: "POST", headers: headers(), body: form });
    if (!response.ok) {
      draftStatus(await errorText(response), true);
      return;
    }
    const thread = await response.json();
    $("thread-log").replaceChildren();
    renderThread(thread);
    draftStatus("thread " + thread.thread);
  } catch (err) {
    draftStatus("request failed: " + err, true);
  } finally {
    $("draft").disabled = false;
  }
}

async function decide(verb) {
  $("approve").disabled = $("reject").disabled = true;
  try {
    const response = await fetch("/v1/copilot/threads/" + currentThread + "/" + verb, {
      method: "POST",
      headers: headers(),
    });
    if (!response.ok) {
      addMessage("error", await errorText(response), $("thread-log"));
      return;
    }
    renderThread(await response.json());
  } catch (err) {
    addMessage("error", "request failed: " + err, $("thread-log"));
  } finally {
    $("approve").disabled = $("reject").disabled = false;
  }
}

async function sendToThread(event) {
  event.preventDefault();
  const content = $("thread-input").value.trim();
  if (!content || !currentThread) return;
  const log = $("thread-log");
  addMessage("question", content, log);
  $("thread-input").value = "";
  $("thread-send").disabled = true;
  try {
    const response = await fetch("/v1/copilot/threads/" + currentThread + "/messages", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ content }),
    });
    if (!response.ok) {
      addMessage("error", await errorText(response), log);
      return;
    }
    const reply = await response.json();
    const box = addMessage("answer", undefined, log);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = reply.reply;
    box.append(text);
    if (reply.answer) renderAnswer(box, reply.answer);
    renderThread(reply.thread);
  } catch (err) {
    addMessage("error", "request failed: " + err, log);
  } finally {
    $("thread-send").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", useKey);
  $("ask-form").addEventListener("submit", ask);
  $("tab-ask").addEventListener("click", () => showTab("ask"));
  $("tab-copilot").addEventListener("click", () => showTab("copilot"));
  $("draft-form").addEventListener("submit", draft);
  $("approve").addEventListener("click", () => decide("approve"));
  $("reject").addEventListener("click", () => decide("reject"));
  $("thread-form").addEventListener("submit", sendToThread);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").click(); }
  });
  if (apiKey()) useKey();
});
