// The usage page's charts, drawn by Chart.js from the JSON the server put in the page
// (a <script type="application/json"> block: data, never code).
(function () {
  "use strict";
  function draw(id, type, labels, values, label) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") { return; }
    canvas.chart = new Chart(canvas, {
      type: type,
      data: { labels: labels, datasets: [{ label: label, data: values }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: type === "doughnut" } } }
    });
  }
  function pairs(table) {
    var keys = Object.keys(table);
    return [keys, keys.map(function (k) { return table[k]; })];
  }
  document.addEventListener("DOMContentLoaded", function () {
    var block = document.getElementById("usage-data");
    if (!block) { return; }
    var data = JSON.parse(block.textContent);
    draw("chart-tokens", "bar", data.days, data.tokens, "tokens");
    draw("chart-cost", "bar", data.days, data.cost, "USD");
    var models = pairs(data.models), tools = pairs(data.tools), roles = pairs(data.roles);
    draw("chart-models", "bar", models[0], models[1], "USD");
    draw("chart-tools", "bar", tools[0], tools[1], "USD");
    draw("chart-roles", "doughnut", roles[0], roles[1], "USD");
    document.body.dataset.chartsReady = "true";
  });
})();
