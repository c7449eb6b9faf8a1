// Progressive enhancement only: without this file the exports page shows the
// state at load time and a link to refresh it. With it, each unfinished job is
// polled through the audit API (GET /api/v1/audit/exports/<id>) until it is
// done or failed; the row's progress bar, status and download link follow.
(function () {
  "use strict";
  var LABELS = { pending: "Pending", running: "Running", done: "Done", failed: "Failed" };
  var FINISHED = { done: true, failed: true };
  var FIRST_DELAY = 1000;
  var MAX_DELAY = 10000;
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-export]"));
  var announcer = document.getElementById("export-announcer");
  var delay = FIRST_DELAY;

  function unfinished() {
    return rows.filter(function (row) {
      return !FINISHED[row.getAttribute("data-status")];
    });
  }

  function part(row, role) {
    return row.querySelector('[data-role="' + role + '"]');
  }

  function size(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return (bytes / 1024).toFixed(1) + " KB";
    return bytes + " bytes";
  }

  function announce(text) {
    if (announcer) announcer.textContent = text;
  }

  function small(text, className) {
    var element = document.createElement("small");
    if (className) element.className = className;
    element.textContent = text;
    return element;
  }

  function showDownload(row, job) {
    var cell = part(row, "download");
    var when = row.getAttribute("data-requested");
    var link = document.createElement("a");
    var hidden = document.createElement("span");
    link.className = "btn btn-secondary";
    link.href = job.download;
    link.appendChild(document.createTextNode("Download"));
    hidden.className = "visually-hidden";
    hidden.textContent = " the export requested " + when;
    link.appendChild(hidden);
    link.appendChild(document.createTextNode(" (zip)"));
    cell.textContent = "";
    cell.appendChild(link);
    cell.appendChild(document.createElement("br"));
    cell.appendChild(small(job.entry_count + (job.entry_count === 1 ? " entry, " : " entries, ") + size(job.byte_size)));
    cell.appendChild(document.createElement("br"));
    cell.appendChild(small("SHA-256 " + job.sha256, "hash"));
  }

  function render(row, job) {
    var before = row.getAttribute("data-status");
    var status = part(row, "status");
    var progress = row.querySelector("progress");
    var percent = String(job.progress) + "%";
    row.setAttribute("data-status", job.status);
    status.className = "badge badge-" + job.status;
    status.textContent = LABELS[job.status] || job.status;
    progress.value = job.progress;
    progress.textContent = percent;
    part(row, "percent").textContent = percent;
    if (job.status === before) return;
    var when = row.getAttribute("data-requested");
    if (job.status === "done" && job.download) {
      showDownload(row, job);
      announce("The export requested " + when + " is done: its bundle is ready to download.");
    } else if (job.status === "failed") {
      var error = part(row, "error");
      error.textContent = job.error;
      error.hidden = !job.error;
      part(row, "download").textContent = "No bundle";
      announce("The export requested " + when + " failed. " + (job.error || ""));
    }
  }

  function fetchJob(row) {
    return fetch(row.getAttribute("data-status-url"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("export status " + response.status);
      return response.json();
    }).then(function (job) {
      render(row, job);
    });
  }

  function poll() {
    var waiting = unfinished();
    if (!waiting.length) {
      var hint = document.getElementById("export-refresh");
      if (hint) hint.hidden = true;
      return;
    }
    Promise.all(waiting.map(fetchJob)).then(
      function () {
        // Long jobs are asked less often; a fresh one is watched closely.
        delay = Math.min(Math.round(delay * 1.2), MAX_DELAY);
      },
      function () {
        delay = Math.min(delay * 2, MAX_DELAY);
      }
    ).then(function () {
      window.setTimeout(poll, delay);
    });
  }

  if (unfinished().length) window.setTimeout(poll, FIRST_DELAY);
})();
