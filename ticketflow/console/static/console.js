// The console's only script: width of ledger intervals, the as-of label, the charts,
// the what-if form's file.
// Loaded from a file (the Content-Security-Policy runs no inline script).
(function () {
  "use strict";

  function bands(root) {
    root.querySelectorAll(".band .seg[data-share]").forEach(function (seg) {
      seg.style.flexGrow = seg.dataset.share;
      seg.style.flexBasis = "0";
    });
  }

  function asOfLabel(root) {
    var range = root.querySelector("#as-of");
    var output = root.querySelector("#as-of-value");
    if (!range || !output || range.dataset.bound) { return; }
    range.dataset.bound = "1";
    range.addEventListener("input", function () { output.value = range.value; });
  }

  var palette = ["#0b5cad", "#a4161a", "#1e6b33", "#7a4b00", "#6a3d9a"];

  function line(canvas, labels, series, yTitle) {
    if (!canvas || typeof Chart === "undefined") { return; }
    new Chart(canvas, {
      type: "line",
      data: {
        labels: labels,
        datasets: series.map(function (s, i) {
          return { label: s.label, data: s.data, borderColor: palette[i % palette.length],
                   backgroundColor: palette[i % palette.length], spanGaps: true, tension: 0.2 };
        })
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 scales: { y: { title: { display: true, text: yTitle } } } }
    });
  }

  function bars(canvas, labels, series) {
    if (!canvas || typeof Chart === "undefined") { return; }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: labels,
        datasets: series.map(function (s, i) {
          return { label: s.label, data: s.data, backgroundColor: palette[i % palette.length],
                   type: s.type || "bar", borderColor: palette[i % palette.length] };
        })
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false }
    });
  }

  function charts(root) {
    var source = root.querySelector("#chart-data");
    if (!source) { return; }
    var data = JSON.parse(source.textContent);
    var pick = function (rows, f) { return rows.map(f); };
    var labels = pick(data.sla, function (r) { return r.period; });
    line(root.querySelector("#chart-sla"), labels, [
      { label: "First response %", data: pick(data.sla, function (r) { return r.first_response.compliance; }) },
      { label: "Resolution %", data: pick(data.sla, function (r) { return r.resolution.compliance; }) }
    ], "percent");
    bars(root.querySelector("#chart-volume"), pick(data.volume, function (r) { return r.period; }), [
      { label: "Created", data: pick(data.volume, function (r) { return r.created; }) },
      { label: "Resolved", data: pick(data.volume, function (r) { return r.resolved; }) },
      { label: "Closed", data: pick(data.volume, function (r) { return r.closed; }) },
      { label: "Backlog", type: "line", data: pick(data.volume, function (r) { return r.backlog; }) }
    ]);
    line(root.querySelector("#chart-times"), pick(data.times, function (r) { return r.period; }), [
      { label: "First response, mean min", data: pick(data.times, function (r) { return r.first_response.mean; }) },
      { label: "Resolution, mean min", data: pick(data.times, function (r) { return r.resolution.mean; }) }
    ], "counted minutes");
    line(root.querySelector("#chart-satisfaction"), pick(data.satisfaction, function (r) { return r.period; }), [
      { label: "CSAT %", data: pick(data.satisfaction, function (r) { return r.csat; }) },
      { label: "NPS", data: pick(data.satisfaction, function (r) { return r.nps; }) },
      { label: "Self-service solved %", data: pick(data.satisfaction, function (r) { return r.self_service; }) }
    ], "percent / NPS");
  }

  // The what-if form: a chosen policy file is read into the text area that is posted.
  function policyFile(root) {
    var input = root.querySelector("#policy-file");
    var text = root.querySelector("#policy-text");
    if (!input || !text || input.dataset.bound) { return; }
    input.dataset.bound = "1";
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) { return; }
      file.text().then(function (content) { text.value = content; });
    });
  }

  function ready(root) { bands(root); asOfLabel(root); policyFile(root); }

  document.addEventListener("DOMContentLoaded", function () { ready(document); charts(document); });
  document.addEventListener("htmx:afterSettle", function () { ready(document); });
})();
