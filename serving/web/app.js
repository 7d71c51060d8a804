// meshpilot web chat: paste a key, ask, read the streamed answer, open its citations.
// Everything the server sends is inserted as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_SLOT = "meshpilot.key"; // sessionStorage: the key lives as long as this tab
let answers = 0;

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

function addMessage(kind, text) {
  const div = document.createElement("div");
  div.className = "msg " + kind;
  if (text !== undefined) div.textContent = text;
  $("log").append(div);
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

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", useKey);
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").click(); }
  });
  if (apiKey()) useKey();
});
