// Sends the chosen photo to /v1/predict and shows the answer. No library, no CDN:
// the page works wherever the service is reachable, offline included.
"use strict";

const form = document.getElementById("photo-form");
const input = document.getElementById("photo");
const statusLine = document.getElementById("status");
const answer = document.getElementById("answer");
const preview = document.getElementById("preview");

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
}

async function identify(file) {
  answer.hidden = true;
  statusLine.textContent = "Looking at the photo…";
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  const body = new FormData();
  body.append("photo", file);
  try {
    const response = await fetch("/v1/predict?top=3", { method: "POST", body });
    const result = await response.json();
    if (!response.ok) {
      statusLine.textContent = `Sorry: ${result.error}`;
      return;
    }
    statusLine.textContent = "";
    show(result);
  } catch (error) {
    statusLine.textContent = "The service cannot be reached: check the connection and try again.";
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (input.files.length) identify(input.files[0]);
});
// On a phone, taking the photo is the whole gesture: ask at once.
input.addEventListener("change", () => {
  if (input.files.length) identify(input.files[0]);
});
