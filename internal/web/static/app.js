// socle dashboard: table filters, live refresh of the fleet and of job
// progress. No framework; read it top to bottom.
"use strict";

// Filter the rows of a table as the user types.
document.addEventListener("input", (ev) => {
  const input = ev.target;
  if (!input.dataset || !input.dataset.filter) return;
  const q = input.value.toLowerCase();
  const table = document.getElementById(input.dataset.filter);
  if (!table) return;
  for (const row of table.tBodies[0].rows) {
    row.hidden = q !== "" && !row.textContent.toLowerCase().includes(q);
  }
});

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(url + ": " + r.status);
  return r.json();
}

// The fleet page reloads when the set of scanned images changes, so that
// a pushed image shows up within seconds of its scan.
function watchFleet() {
  const el = document.querySelector("[data-fleet-version]");
  if (!el) return;
  const seen = el.dataset.fleetVersion;
  setInterval(async () => {
    try {
      const v = await getJSON("/api/v1/fleet/version");
      if (v.version !== seen && !document.querySelector(".filter:focus")) location.reload();
    } catch (e) { /* keep the page as it is */ }
  }, 2000);
}

// The jobs page updates states and progress bars in place.
function watchJobs() {
  const table = document.querySelector("table[data-refresh]");
  if (!table) return;
  setInterval(async () => {
    try {
      const body = await getJSON(table.dataset.refresh);
      const known = new Set();
      for (const j of body.jobs) {
        known.add(String(j.id));
        const row = table.querySelector(`tr[data-job="${j.id}"]`);
        if (!row) { location.reload(); return; }
        row.querySelector(".state").textContent = j.state;
        row.querySelector(".state").className = "state state-" + j.state;
        const bar = row.querySelector("progress");
        bar.value = j.total > 0 ? Math.floor((j.done * 100) / j.total) : 0;
        row.querySelector("small").textContent = j.message + (j.error ? " — " + j.error : "");
      }
    } catch (e) { /* keep the page as it is */ }
  }, 1500);
}

watchFleet();
watchJobs();
