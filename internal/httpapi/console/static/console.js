// Gatehouse console: the few behaviours HTML has no attribute for.
// Loaded from 'self' only; the pages carry no inline script or style.
(function () {
  "use strict";

  // Buttons with data-confirm ask before their form is sent.
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-confirm]");
    if (b && !window.confirm(b.getAttribute("data-confirm"))) e.preventDefault();
  });

  // Copy buttons (data-copy names the input to copy).
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var input = document.getElementById(b.getAttribute("data-copy"));
      var status = document.getElementById("copy-status");
      var done = function (ok) {
        b.textContent = ok ? "Copied" : "Copy";
        if (status) status.textContent = ok ? "The secret is on the clipboard." : "Copying failed: select the secret and copy it by hand.";
      };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(function () { done(true); }, function () { done(document.execCommand("copy")); });
      } else {
        done(document.execCommand("copy"));
      }
    });
  });

  // Overview charts: polled from the server's own metrics and drawn as SVG.
  var charts = document.getElementById("charts");
  if (charts) {
    var svgNS = "http://www.w3.org/2000/svg";
    var fmt = function (v) { return v == null ? "–" : (v >= 100 ? Math.round(v) : Math.round(v * 10) / 10); };
    var draw = function (data) {
      charts.replaceChildren();
      data.charts.forEach(function (c) {
        var box = document.createElement("figure");
        box.className = "chart";
        var pts = c.points, last = pts.length ? pts[pts.length - 1] : null;
        if (pts.length === 1) pts = [pts[0], pts[0]]; // one sample: a level line
        var h = document.createElement("h3");
        h.textContent = c.name + (c.unit ? " (" + c.unit + ")" : "");
        var now = document.createElement("div");
        now.className = "now";
        now.textContent = fmt(last);
        var svg = document.createElementNS(svgNS, "svg");
        svg.setAttribute("viewBox", "0 0 100 40");
        svg.setAttribute("preserveAspectRatio", "none");
        svg.setAttribute("role", "img");
        svg.setAttribute("aria-label", c.name + ", last " + c.points.length + " samples, now " + fmt(last));
        var top = Math.max.apply(null, pts.map(function (v) { return v || 0; }).concat([1]));
        var line = document.createElementNS(svgNS, "polyline");
        line.setAttribute("points", pts.map(function (v, i) {
          var x = pts.length > 1 ? (i * 100) / (pts.length - 1) : 0;
          return x.toFixed(2) + "," + (38 - ((v || 0) / top) * 36).toFixed(2);
        }).join(" "));
        svg.appendChild(line);
        box.append(h, now, svg);
        charts.appendChild(box);
      });
    };
    var poll = function () {
      fetch(charts.getAttribute("data-src"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) { if (d) draw(d); })
        .catch(function () {});
    };
    poll();
    setInterval(poll, 5000);
  }

  // Audit live tail: new records are added on top as they come.
  var tail = document.getElementById("tail");
  if (tail) {
    var timer = null;
    var body = document.querySelector("#audit tbody");
    var after = tail.getAttribute("data-after") || new Date(0).toISOString();
    var fetchNew = function () {
      fetch(tail.getAttribute("data-src") + "?after=" + encodeURIComponent(after), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (recs) {
          if (!recs.length) return;
          after = recs[0].time;
          var empty = body.querySelector("tr.empty");
          if (empty) empty.remove();
          recs.slice().reverse().forEach(function (rec) {
            var tr = document.createElement("tr");
            tr.className = "new";
            var t = new Date(rec.time).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
            [t, rec.actor, rec.ip, rec.action, rec.target, rec.outcome, rec.detail].forEach(function (v, i) {
              var td = document.createElement("td");
              if (i === 5) {
                var s = document.createElement("span");
                s.className = "badge " + v;
                s.textContent = v;
                td.appendChild(s);
              } else {
                td.textContent = v || "";
              }
              tr.appendChild(td);
            });
            body.insertBefore(tr, body.firstChild);
          });
        })
        .catch(function () {});
    };
    tail.addEventListener("change", function () {
      if (tail.checked) { fetchNew(); timer = setInterval(fetchNew, 3000); } else { clearInterval(timer); }
    });
  }
})();
