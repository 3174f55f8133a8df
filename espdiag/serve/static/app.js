// espdiag's paste page: a copy button for the forum reply and dropping a log file on the text box.
// Everything else works without this script (the form posts and the server renders the answer).
"use strict";

function copyReply(button, status) {
  const reply = document.getElementById("markdown");
  const done = () => { status.textContent = "Copied: paste it into the thread."; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(reply.value).then(done, () => fallbackCopy(reply, done, status));
  } else {
    fallbackCopy(reply, done, status);
  }
}

function fallbackCopy(reply, done, status) {
  reply.focus();
  reply.select();
  try {
    if (document.execCommand("copy")) { done(); return; }
  } catch (e) { /* fall through */ }
  status.textContent = "Select the reply above and copy it (Ctrl+C / Cmd+C).";
}

function readDroppedFile(box, file) {
  const reader = new FileReader();
  reader.onload = () => { box.value = String(reader.result); };
  reader.readAsText(file);
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("copy");
  const status = document.getElementById("copy-status");
  if (button && status) {
    button.hidden = false;
    button.addEventListener("click", () => copyReply(button, status));
  }
  const box = document.getElementById("log");
  if (box) {
    box.addEventListener("dragover", (event) => { event.preventDefault(); });
    box.addEventListener("drop", (event) => {
      const files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) {
        event.preventDefault();
        readDroppedFile(box, files[0]);
      }
    });
  }
});
