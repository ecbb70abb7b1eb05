// ringd console: progressive enhancement only. Every page works without
// this file; it adds copy buttons, the live trace of the push test, the
// self-updating trace and simulator pages, and the dashboard's charts.
"use strict";
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || r.statusText);
        return body;
      });
    });
  }

  // Copy buttons.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-copy]");
    if (!b) return;
    var text = b.getAttribute("data-copy");
    var done = function () {
      var old = b.textContent;
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  });
  function fallbackCopy(text) {
    var t = el("textarea", { readonly: "", "aria-hidden": "true", class: "sr" });
    t.value = text;
    document.body.appendChild(t);
    t.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    t.remove();
  }

  // On a narrow screen the app menu scrolls: show the current page's entry.
  var cur = document.querySelector(".appnav [aria-current]");
  if (cur && cur.parentNode.scrollWidth > cur.parentNode.clientWidth) {
    cur.parentNode.scrollLeft = cur.offsetLeft - cur.parentNode.clientWidth / 3;
  }

  // The app switcher navigates at once.
  var sw = document.querySelector("[data-app-switcher] select");
  if (sw) sw.addEventListener("change", function () {
    if (sw.value) location.href = "/console/apps/" + encodeURIComponent(sw.value);
  });

  // ---- Push test: send by fetch, then poll the trace's JSON ----
  var pushForm = document.querySelector("form[data-live-trace]");
  if (pushForm) pushForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var out = document.getElementById("live-trace");
    var btn = pushForm.querySelector("button[type=submit]");
    btn.disabled = true;
    out.replaceChildren(el("p", { class: "muted", text: "Sending…" }));
    fetch(pushForm.action, {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(pushForm))
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || r.statusText);
        return body;
      });
    }).then(function (res) {
      watchTrace(res, out, 0);
    }).catch(function (err) {
      out.replaceChildren(el("div", { class: "flash flash-error", role: "alert", text: err.message }));
    }).finally(function () { btn.disabled = false; });
  });

  function watchTrace(res, out, n) {
    getJSON(res.json_url).then(function (t) {
      renderLiveTrace(t, res.trace_url, out);
      if (t.status === "pending" && n < 120) setTimeout(function () { watchTrace(res, out, n + 1); }, 400);
    }).catch(function (err) {
      out.replaceChildren(el("div", { class: "flash flash-error", role: "alert", text: err.message }));
    });
  }

  function badge(s) { return el("span", { class: "badge badge-" + s, text: String(s).replace(/_/g, " ") }); }

  function renderLiveTrace(t, url, out) {
    var steps = el("ol", { class: "live-steps" });
    steps.appendChild(el("li", { class: "done" }, ["Accepted by ringd: push ", el("code", { text: t.push_id }), " to " + t.user]));
    steps.appendChild(el("li", { class: t.devices.length ? "done" : "bad",
      text: t.devices.length ? "Outbox: " + t.devices.length + " deliver" + (t.devices.length === 1 ? "y" : "ies") : "Outbox: no device to push to" }));
    t.devices.forEach(function (d) {
      var li = el("li", { class: d.state === "delivered" ? "done" : (d.state === "pending" ? "" : "bad") }, [
        "Device " + (d.device_id || d.token) + " · " + d.kind + " · certificate ", el("code", { text: String(d.certificate_id) }),
        " (" + d.environment + ") ", badge(d.state)]);
      var ul = el("ul", { class: "plain" });
      d.attempts.forEach(function (a, i) {
        ul.appendChild(el("li", {}, [
          "Attempt " + (i + 1) + ": " + a.environment + ", certificate " + a.certificate_id + " → ",
          el("strong", { text: a.status ? String(a.status) : "no answer" }), a.reason ? " " + a.reason : "",
          " · " + a.latency_ms.toFixed(1) + " ms · ", badge(a.classification),
          a.apns_id ? el("div", { class: "muted small", text: "apns-id " + a.apns_id + (a.apns_unique_id ? " · apns-unique-id " + a.apns_unique_id : "") }) : null,
          a.diagnosis ? el("p", { class: "diagnosis", text: a.diagnosis }) : null]));
      });
      if (d.attempts.length) li.appendChild(ul);
      steps.appendChild(li);
    });
    var result = el("div", { class: "card summary summary-" + t.status, id: "live-status", "data-status": t.status }, [
      el("p", { class: "result" }, [badge(t.status)]),
      t.diagnosis ? el("p", { class: "diagnosis", text: t.diagnosis }) : null,
      el("p", {}, [el("a", { href: url, text: "Open in troubleshooting" })])]);
    out.replaceChildren(result, steps);
  }

  // ---- Trace page: reload when a pending push changes ----
  var tr = document.querySelector("#trace[data-poll]");
  if (tr) {
    var polls = 0;
    var tick = function () {
      getJSON(tr.getAttribute("data-trace-json")).then(function (t) {
        if (t.status !== tr.getAttribute("data-status")) { location.reload(); return; }
        if (++polls < 300) setTimeout(tick, 1000);
      }).catch(function () { setTimeout(tick, 5000); });
    };
    setTimeout(tick, 700);
  }

  // ---- Simulator: refresh the phones ----
  var phones = document.querySelector("#phones[data-poll-url]");
  if (phones) {
    var last = null;
    var refresh = function () {
      fetch(phones.getAttribute("data-poll-url"), { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error(r.statusText);
        return r.text();
      }).then(function (html) {
        var busy = phones.querySelector("details[open]") || phones.contains(document.activeElement);
        if (html !== last && !busy) {
          if (last !== null) phones.innerHTML = html;
          last = html;
        }
        setTimeout(refresh, 1500);
      }).catch(function () { setTimeout(refresh, 5000); });
    };
    refresh();
  }

  // ---- Dashboard ----
  var dash = document.getElementById("chart-pushes");
  if (dash) {
    var load = function () {
      getJSON("/console/dashboard/data").then(drawDashboard).catch(function (err) {
        document.getElementById("dash-updated").textContent = "Could not load: " + err.message;
      }).finally(function () { setTimeout(load, 10000); });
    };
    load();
  }

  var resultColors = { delivered: "#2da44e", token_dead: "#cf222e", configuration: "#e16f24", bad_request: "#a40e26", transient: "#8250df", expired: "#bf8700" };
  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  // niceMax rounds the top of an axis up so that its four steps are round
  // numbers (1, 2, 2.5 or 5 times a power of ten; whole numbers for counts).
  function niceMax(v, whole) {
    if (!(v > 0)) return whole ? 4 : 1;
    var raw = v / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (f) { return f * p; }).find(function (s) { return s >= raw; });
    if (whole) step = Math.max(1, Math.ceil(step));
    return step * 4;
  }
  function fmt(v) { return v >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toString(); }

  // frame draws axes for [t0, t1] × [0, ymax] and returns the scales.
  function frame(host, t0, t1, ymax) {
    var W = 600, H = 200, L = 44, R = 8, T = 8, B = 22;
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none" });
    var x = function (t) { return L + (t - t0) / (t1 - t0) * (W - L - R); };
    var y = function (v) { return H - B - v / ymax * (H - T - B); };
    for (var i = 0; i <= 4; i++) {
      var v = ymax * i / 4;
      s.appendChild(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      var lab = svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" });
      lab.textContent = fmt(v);
      s.appendChild(lab);
    }
    [60, 45, 30, 15, 0].forEach(function (m) {
      var t = t1 - m * 60000;
      var lab = svg("text", { x: x(t), y: H - 6, "text-anchor": m === 0 ? "end" : "middle" });
      lab.textContent = m === 0 ? "now" : "-" + m + " min";
      s.appendChild(lab);
    });
    s.appendChild(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    host.replaceChildren(s);
    return { svg: s, x: x, y: y, W: W };
  }

  function lines(host, pts, keys, colors, whole) {
    var t1 = Date.now(), t0 = t1 - 3600000, max = 0;
    pts.forEach(function (p) { keys.forEach(function (k) { if (p[k] != null && p[k] > max) max = p[k]; }); });
    var f = frame(host, t0, t1, niceMax(max, whole));
    keys.forEach(function (k, i) {
      var d = "", pen = false;
      pts.forEach(function (p) {
        if (p[k] == null || p.t < t0) { pen = false; return; }
        d += (pen ? " L" : " M") + f.x(p.t).toFixed(1) + " " + f.y(p[k]).toFixed(1);
        pen = true;
      });
      if (d) f.svg.appendChild(svg("path", { d: d, fill: "none", stroke: colors[i], "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
      if (pts.length <= 30) pts.forEach(function (p) { // dots keep a few points visible
        if (p[k] != null && p.t >= t0) f.svg.appendChild(svg("circle", { cx: f.x(p.t), cy: f.y(p[k]), r: 2.5, fill: colors[i] }));
      });
    });
  }

  function drawDashboard(d) {
    var t1 = Date.now(), t0 = t1 - 3600000;
    var pts = d.points.filter(function (p) { return p.t >= t0; });
    // Pushes per minute by result: stacked bars, one per sample interval.
    var max = 0;
    pts.forEach(function (p) {
      var sum = 0;
      for (var r in p.per_minute) sum += p.per_minute[r];
      if (sum > max) max = sum;
    });
    var f = frame(document.getElementById("chart-pushes"), t0, t1, niceMax(max));
    var bw = Math.max(2, (f.x(t0 + d.interval_seconds * 1000) - f.x(t0)) - 1);
    pts.forEach(function (p) {
      var base = 0;
      d.results.forEach(function (r) {
        var v = p.per_minute[r] || 0;
        if (!v) return;
        var top = base + v;
        f.svg.appendChild(svg("rect", { x: f.x(p.t) - bw, y: f.y(top), width: bw, height: f.y(base) - f.y(top), fill: resultColors[r] || "#6e7781" }));
        base = top;
      });
    });
    var legend = document.getElementById("legend-pushes");
    legend.replaceChildren.apply(legend, d.results.map(function (r) {
      return el("li", {}, [el("span", { class: "swatch s-" + (resultColors[r] ? r : "other") }), r.replace(/_/g, " ") + " (" + fmt(d.window.pushes[r] || 0) + ")"]);
    }));
    lines(document.getElementById("chart-latency"), pts.map(function (p) { return { t: p.t, p50: p.p50_ms, p95: p.p95_ms, p99: p.p99_ms }; }),
      ["p50", "p95", "p99"], ["#2da44e", "#e16f24", "#cf222e"]);
    var w = d.window;
    document.getElementById("latency-window").textContent = w.apns_requests
      ? "Last hour: " + fmt(w.apns_requests) + " APNs requests · p50 " + fmt(w.p50_ms) + " ms · p90 " + fmt(w.p90_ms) + " ms · p99 " + fmt(w.p99_ms) + " ms"
      : "No APNs requests in the last hour.";
    lines(document.getElementById("chart-gauges"), pts.map(function (p) { return { t: p.t, o: p.outbox, c: p.connections, r: p.ringing }; }),
      ["o", "c", "r"], ["#8250df", "#1f6feb", "#2da44e"], true);

    var lastMin = 0;
    pts.forEach(function (p) {
      if (p.t >= t1 - 60000) for (var r in p.per_minute) lastMin += p.per_minute[r] * d.interval_seconds / 60;
    });
    document.getElementById("now-pushes").textContent = fmt(lastMin);
    document.getElementById("now-outbox").textContent = fmt(d.now.outbox);
    document.getElementById("now-connections").textContent = fmt(d.now.connections);
    document.getElementById("now-ringing").textContent = fmt(d.now.ringing);

    var tb = document.querySelector("#reasons tbody");
    tb.replaceChildren.apply(tb, (d.top_reasons || []).map(function (r) {
      return el("tr", {}, [el("td", {}, [el("code", { text: r.reason || "—" })]), el("td", {}, [badge(r.result)]), el("td", { text: fmt(r.count) })]);
    }));
    document.getElementById("reasons-empty").hidden = (d.top_reasons || []).length > 0;
    var te = document.querySelector("#expiring tbody");
    te.replaceChildren.apply(te, d.expiring.map(function (c) {
      return el("tr", {}, [
        el("td", {}, [el("a", { href: "/console/apps/" + c.sdkappid + "/certificates", text: String(c.certificate_id) })]),
        el("td", { text: String(c.sdkappid) }), el("td", { text: c.bundle_id }), el("td", { text: c.environment }),
        el("td", { class: "warn", text: c.days_left < 0 ? "expired" : String(c.days_left) })]);
    }));
    document.getElementById("expiring-empty").hidden = d.expiring.length > 0;
    document.getElementById("dash-updated").textContent = "Updated " + new Date().toLocaleTimeString() + " · sampled every " + d.interval_seconds + " s, last hour kept in memory";
  }
})();
