// Sends the chosen photo to /v1/predict and shows the answer. No library, no CDN:
// the page works wherever the service is reachable, offline included.
"use strict";

const form = document.getElementById("photo-form");
const inputs = [document.getElementById("camera"), document.getElementById("photo")];
const statusLine = document.getElementById("status");
const answer = document.getElementById("answer");
const preview = document.getElementById("preview");
const button = document.getElementById("ask");
let pending = null; // the request in flight: a newer photo cancels it

function percent(probability) {
  return (probability * 100).toFixed(1) + "%";
}

function about(guess) {
  return [guess.fruit, guess.family, guess.note].filter(Boolean).join(" · ");
}

function show(result) {
  const best = result.top[0];
  document.getElementById("fruit-name").textContent = best.label;
  document.getElementById("fruit-probability").textContent = percent(best.probability);
  document.getElementById("fruit-info").textContent = about(best);
  const list = document.getElementById("top");
  list.replaceChildren(
    ...result.top.map((guess) => {
      const item = document.createElement("li");
      item.textContent = `${guess.label}: ${percent(guess.probability)}`;
      return item;
    }),
  );
  document.getElementById("model-version").textContent = Object.values(result.model_version)
    .map((digest) => digest.slice(0, 8))
    .join("-");
  answer.hidden = false;
  // Announced by screen readers (the status line is a live region).
  statusLine.textContent = `Probably ${best.label} (${percent(best.probability)}).`;
}

async function identify(file) {
  if (pending) pending.abort();
  const request = new AbortController();
  pending = request;
  answer.hidden = true;
  button.disabled = true;
  statusLine.textContent = "Looking at the photo…";
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  const body = new FormData();
  body.append("photo", file);
  try {
    const response = await fetch("/v1/predict?top=3", {
      method: "POST",
      body,
      signal: request.signal,
    });
    const result = await response.json();
    if (!response.ok) {
      statusLine.textContent = `Sorry: ${result.error}`;
      return;
    }
    show(result);
  } catch (error) {
    if (error.name === "AbortError") return; // a newer photo took over
    statusLine.textContent = "The service cannot be reached: check the connection and try again.";
  } finally {
    if (pending === request) {
      pending = null;
      button.disabled = false;
    }
  }
}

function chosen() {
  return inputs.map((input) => input.files[0]).find(Boolean);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = chosen();
  if (file) identify(file);
  else statusLine.textContent = "Take or choose a photo first.";
});
// On a phone, taking or choosing the photo is the whole gesture: ask at once.
for (const input of inputs) {
  input.addEventListener("change", () => {
    if (!input.files.length) return;
    for (const other of inputs) if (other !== input) other.value = "";
    identify(input.files[0]);
  });
}
