// The hub console: asks who you are, then shows the operators' status (refreshed every few
// seconds) and browses an aggregate's events. Everything it shows comes from
// /console/api/status and /console/api/events on this hub; every text is set as text, never
// as HTML.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  const STORED = "hub-console-identity";
  const modeMeta = document.querySelector('meta[name="hub-identity-mode"]');
  const mode = modeMeta && modeMeta.content === "production" ? "production" : "development";
  document.documentElement.dataset.mode = mode;
  const params = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);

  let identity = null;
  let timer = null;
  let statusAllowed = true;
  let browsing = null; // { aggregate, next }

  // An element with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const text = (value) => (value === undefined || value === null ? "" : String(value));
  const time = (value) => (value ? String(value).replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
  function bytes(value) {
    let n = Number(value || 0);
    for (const unit of ["B", "KiB", "MiB", "GiB"]) {
      if (n < 1024 || unit === "GiB") return (unit === "B" ? n : n.toFixed(1)) + " " + unit;
      n /= 1024;
    }
    return "";
  }
  // Numbers come as proto3 JSON writes them: 64-bit ones as strings, and 0 left out.
  const count = (value) => text(value === undefined || value === null ? "0" : value);
  const num = (value) => el("td", { class: "num" }, count(value));
  // A proto3 JSON duration ("0.25s") as a time ago.
  function ago(value) {
    if (!value) return "";
    const seconds = parseFloat(value);
    if (!(seconds >= 0)) return text(value);
    if (seconds < 1) return Math.round(seconds * 1000) + " ms ago";
    if (seconds < 120) return seconds.toFixed(1) + " s ago";
    if (seconds < 7200) return Math.round(seconds / 60) + " min ago";
    return (seconds / 3600).toFixed(1) + " h ago";
  }

  // --- identity -------------------------------------------------------------------------

  function stored() {
    try {
      return JSON.parse(sessionStorage.getItem(STORED) || "null");
    } catch {
      return null;
    }
  }

  function headers() {
    const h = { accept: "application/json" };
    if (mode === "development" && identity.department) h["x-hub-department"] = identity.department;
    if (identity.token) h.authorization = "Bearer " + identity.token;
    if (identity.user) h["x-hub-user"] = identity.user;
    h["x-hub-purpose"] = identity.purpose || "console";
    return h;
  }

  async function api(path) {
    try {
      const response = await fetch(path, {
        headers: headers(),
        credentials: "same-origin",
        cache: "no-store",
      });
      let body = null;
      try {
        body = await response.json();
      } catch {
        body = { error: "the hub answered " + response.status + " without JSON" };
      }
      return { status: response.status, body };
    } catch (err) {
      return { status: 0, body: { error: "the hub cannot be reached: " + err.message } };
    }
  }

  const describe = (body) =>
    text(body && body.error) + (body && body.field ? " (field: " + body.field + ")" : "");

  function showIdentify(error) {
    if (timer) clearInterval(timer);
    timer = null;
    $("console").hidden = true;
    $("leave").hidden = true;
    $("whoami").textContent = "";
    $("identify").hidden = false;
    $("identify-error").textContent = error || "";
  }

  function connect(who) {
    identity = who;
    sessionStorage.setItem(STORED, JSON.stringify(who));
    $("identify").hidden = true;
    $("console").hidden = false;
    $("leave").hidden = false;
    const unit = mode === "development" ? who.department : who.token ? "by token" : "by certificate";
    $("whoami").textContent = unit + " · " + who.user + " · " + (who.purpose || "console");
    statusAllowed = true;
    loadStatus();
    timer = setInterval(() => statusAllowed && loadStatus(), REFRESH_MS);
    const aggregate = $("aggregate").value.trim();
    if (aggregate) browse(aggregate, $("after").value.trim(), false);
  }

  // A refusal of who you are (401, or a malformed identity header): back to the form.
  function refusedIdentity(r) {
    return r.status === 401 || (r.status === 400 && /^x-hub-/.test((r.body && r.body.field) || ""));
  }

  $("identity-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const who = {
      department: $("department").value.trim(),
      token: $("token").value.trim(),
      user: $("user").value.trim(),
      purpose: $("purpose").value.trim() || "console",
    };
    if (mode === "development" && !who.department) {
      $("identify-error").textContent = "Name your unit.";
      return;
    }
    connect(who);
  });

  $("leave").addEventListener("click", () => {
    sessionStorage.removeItem(STORED);
    showIdentify("");
  });

  // --- status ---------------------------------------------------------------------------

  function fill(tableId, rows) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren(...rows);
  }

  function renderStatus(s) {
    $("status-body").hidden = false;
    $("status-error").textContent = "";
    $("status-time").textContent = "at " + time(s.time) + " (every " + REFRESH_MS / 1000 + " s)";
    $("instance").textContent = "instance " + text(s.instance);

    const events = (s.streams || []).find((x) => x.name === "GOV_EVENTS");
    $("log-summary").replaceChildren(
      el("span", { id: "log-last" }, "GOV_EVENTS last position " + (events ? count(events.lastSequence) : "?")),
      el("br"),
      "log digest at position " + count(s.logDigestPosition),
    );

    const d = s.durability || {};
    $("durability-card").className = "card " + (d.safe ? "safe" : "unsafe");
    $("durability").textContent =
      (d.safe ? "safe" : "UNSAFE") +
      (d.serverName ? " · " + d.serverName + " " + text(d.version) : "") +
      " · " + text(d.finding);

    const alarms = s.alarms || [];
    $("alarms").replaceChildren(
      ...(alarms.length
        ? alarms.map((a) => el("li", { class: "alarm" }, el("strong", {}, text(a.key)), ": " + text(a.text)))
        : [el("li", { class: "muted" }, "none")]),
    );

    fill(
      "streams",
      (s.streams || []).map((x) =>
        el("tr", { id: "stream-" + x.name },
          el("td", {}, text(x.name)), num(x.messages), el("td", { class: "num" }, bytes(x.bytes)),
          num(x.firstSequence), num(x.lastSequence), el("td", {}, time(x.lastTime)),
          num(x.consumers), num(x.replicas))),
    );

    fill(
      "read-models",
      (s.readModels || []).map((m) => {
        const lag = Number(m.lag || 0);
        const classes = [m.state === "halted" ? "halted" : "", m.state === "rebuilding" ? "rebuilding" : "",
          lag > 0 ? "lagging" : ""].filter(Boolean).join(" ");
        const r = m.rebuild;
        const rebuild = r
          ? count(r.position) + " / " + count(r.last) + (r.caughtUp ? " caught up" : "") +
            (r.halted ? " halted: " + r.halted : "")
          : "";
        return el("tr", { id: "model-" + m.name, class: classes || null },
          el("td", {}, text(m.name)), el("td", {}, text(m.dataset)), num(m.position),
          el("td", { class: "num lag" }, count(m.lag)), el("td", {}, ago(m.lagAge)),
          el("td", {}, text(m.state) + (m.halted ? ": " + m.halted : "")),
          el("td", { class: "num" }, m.rows === undefined ? "" : text(m.rows)),
          el("td", { class: "num" }, bytes(m.diskBytes)), el("td", {}, rebuild));
      }),
    );

    fill(
      "feeds",
      (s.feeds || []).map((f) =>
        el("tr", { id: "feed-" + f.department, class: Number(f.lag || 0) > 0 ? "lagging" : null },
          el("td", {}, text(f.department)), el("td", {}, text(f.stream)), num(f.messages),
          num(f.position), num(f.acknowledgedPosition), el("td", { class: "num lag" }, count(f.lag)),
          num(f.consumers), num(f.waiting))),
    );

    fill(
      "health",
      (s.health || []).map((h) =>
        el("tr", {},
          el("td", {}, text(h.service)),
          el("td", { class: h.status === "SERVING" ? null : "not-serving" }, text(h.status)))),
    );
  }

  async function loadStatus() {
    const r = await api("/console/api/status");
    if (r.status === 200) {
      renderStatus(r.body);
    } else if (refusedIdentity(r)) {
      showIdentify("Refused: " + describe(r.body));
    } else if (r.status === 403) {
      // An auditor (or another unit): no status, the browser may still serve.
      statusAllowed = false;
      $("status-body").hidden = true;
      $("status-note").hidden = false;
      $("status-note").textContent =
        "The status is for operators (" + describe(r.body) + "). " +
        "Auditors may browse the log below.";
    } else {
      $("status-error").textContent = "Status not refreshed: " + describe(r.body);
    }
  }

  // --- stream browser -------------------------------------------------------------------

  const HEADERS = [
    ["event id", "eventId"],
    ["event type", "eventType"],
    ["time", "time"],
    ["stored at", "storedAt"],
    ["department", "department"],
    ["source", "source"],
    ["acting person", "actingPerson"],
    ["request id", "requestId"],
    ["correlation id", "correlationId"],
    ["causation id", "causationId"],
    ["schema version", "schemaVersion"],
  ];

  function eventRow(e) {
    const body = e.body ? Object.assign({}, e.body) : null;
    const bodyType = body ? body["@type"] : "";
    if (body) delete body["@type"];
    const masked = e.masked || [];
    const withheld = e.withheld || [];
    const headerRows = HEADERS.map(([label, key]) =>
      el("tr", {}, el("th", {}, label),
        el("td", {}, key === "time" || key === "storedAt" ? time(e[key]) : key === "schemaVersion" ? count(e[key]) : text(e[key]))));
    headerRows.push(el("tr", {}, el("th", {}, "body type"), el("td", {}, text(bodyType))));
    return el("tr", { id: "event-" + e.position },
      num(e.position), el("td", {}, time(e.storedAt)), el("td", {}, text(e.eventType)),
      el("td", {}, text(e.department)), el("td", {}, text(e.actingPerson)),
      el("td", { class: "body" },
        body ? el("pre", {}, JSON.stringify(body, null, 2)) : el("em", { class: "muted" }, "no body"),
        masked.length ? el("p", { class: "masked" }, "masked: " + masked.join(", ")) : null,
        withheld.length ? el("p", { class: "masked" }, "withheld: " + withheld.join(", ")) : null,
        el("details", {}, el("summary", {}, "headers"), el("table", { class: "headers" }, el("tbody", {}, headerRows)))));
  }

  async function browse(aggregate, after, append) {
    $("browse-error").textContent = "";
    const query = new URLSearchParams({ aggregate });
    if (after) query.set("after", after);
    const r = await api("/console/api/events?" + query.toString());
    if (refusedIdentity(r)) {
      showIdentify("Refused: " + describe(r.body));
      return;
    }
    if (r.status !== 200) {
      $("browse-error").textContent = describe(r.body);
      return;
    }
    const events = r.body.events || [];
    const table = $("events");
    const body = table.querySelector("tbody");
    if (!append) body.replaceChildren();
    body.append(...events.map(eventRow));
    table.hidden = body.children.length === 0;
    browsing = { aggregate: r.body.aggregate, next: r.body.nextPageToken || "" };
    $("more").hidden = !browsing.next;
    const shown = body.children.length;
    $("browse-note").textContent = shown
      ? shown + " event" + (shown === 1 ? "" : "s") + " of " + browsing.aggregate +
        (browsing.next ? " (more follow)" : "")
      : "No events of " + r.body.aggregate + (after ? " after position " + after : "");
    const url = new URL(location.href);
    url.searchParams.set("aggregate", r.body.aggregate);
    history.replaceState(null, "", url);
  }

  $("browse-form").addEventListener("submit", (event) => {
    event.preventDefault();
    browse($("aggregate").value.trim(), $("after").value.trim(), false);
  });

  $("more").addEventListener("click", () => {
    if (browsing && browsing.next) browse(browsing.aggregate, browsing.next, true);
  });

  // --- start ----------------------------------------------------------------------------

  const previous = stored() || {};
  $("department").value = params.get("department") || previous.department || "";
  $("user").value = params.get("user") || previous.user || "";
  $("purpose").value = params.get("purpose") || previous.purpose || "console";
  $("token").value = previous.token || "";
  $("aggregate").value = params.get("aggregate") || "";
  $("after").value = params.get("after") || "";

  const ready = $("user").value && (mode === "production" || $("department").value);
  if (ready) {
    connect({
      department: $("department").value,
      token: $("token").value,
      user: $("user").value,
      purpose: $("purpose").value,
    });
  } else {
    showIdentify("");
  }
})();
