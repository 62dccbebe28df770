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

  var pick = function (rows, f) { return rows.map(f); };
  var period = function (r) { return r.period; };
  var draw = {
    sla: function (canvas, rows) {
      line(canvas, pick(rows, period), [
        { label: "First response %", data: pick(rows, function (r) { return r.first_response.compliance; }) },
        { label: "Resolution %", data: pick(rows, function (r) { return r.resolution.compliance; }) }
      ], "percent");
    },
    volume: function (canvas, rows) {
      bars(canvas, pick(rows, period), [
        { label: "Created", data: pick(rows, function (r) { return r.created; }) },
        { label: "Resolved", data: pick(rows, function (r) { return r.resolved; }) },
        { label: "Closed", data: pick(rows, function (r) { return r.closed; }) },
        { label: "Backlog", type: "line", data: pick(rows, function (r) { return r.backlog; }) }
      ]);
    },
    times: function (canvas, rows) {
      line(canvas, pick(rows, period), [
        { label: "First response, mean min", data: pick(rows, function (r) { return r.first_response.mean; }) },
        { label: "Resolution, mean min", data: pick(rows, function (r) { return r.resolution.mean; }) }
      ], "counted minutes");
    },
    satisfaction: function (canvas, rows) {
      line(canvas, pick(rows, period), [
        { label: "CSAT %", data: pick(rows, function (r) { return r.csat; }) },
        { label: "NPS", data: pick(rows, function (r) { return r.nps; }) },
        { label: "Self-service solved %", data: pick(rows, function (r) { return r.self_service; }) }
      ], "percent / NPS");
    }
  };

  // Each dashboard's part carries its own series (it may arrive after the first screen,
  // by htmx); a chart is drawn once, when its data is first seen.
  function charts(root) {
    root.querySelectorAll("[data-series]").forEach(function (source) {
      if (source.dataset.drawn) { return; }
      source.dataset.drawn = "1";
      var data = JSON.parse(source.dataset.series);
      Object.keys(draw).forEach(function (name) {
        if (data[name]) { draw[name](root.querySelector("#chart-" + name), data[name]); }
      });
    });
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
  document.addEventListener("htmx:afterSettle", function () { ready(document); charts(document); });
})();
