// creditpool pages: live balance and history from the organization's event stream.
// Hand-written, no build step. Amounts stay decimal strings: never parsed as floats.
(function () {
  "use strict";

  function groupCredits(text) {
    // Same as creditpool.web.render.credits: "12345.50" -> "12,345.50".
    var sign = text.charAt(0) === "-" ? "-" : "";
    var parts = text.replace(/^-/, "").split(".");
    var whole = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return sign + whole + (parts.length > 1 ? "." + parts[1] : "");
  }

  function units(text) {
    // A decimal string as a BigInt of ten-thousandths (exact).
    var neg = text.charAt(0) === "-";
    var parts = text.replace(/^-/, "").split(".");
    var frac = ((parts[1] || "") + "0000").slice(0, 4);
    var value = BigInt(parts[0]) * 10000n + BigInt(frac);
    return neg ? -value : value;
  }

  function percentUsed(used, total) {
    var t = units(total);
    if (t <= 0n) return 0;
    var p = Number((units(used) * 100n) / t);
    return Math.max(0, Math.min(100, p));
  }

  function applyBalance(balance) {
    ["left", "used", "total", "held", "upcoming"].forEach(function (name) {
      if (balance[name] === undefined) return;
      document.querySelectorAll('[data-balance="' + name + '"]').forEach(function (el) {
        var shown = groupCredits(String(balance[name]));
        if (el.textContent !== shown) {
          el.textContent = shown;
          el.classList.remove("flash");
          void el.offsetWidth; // restart the highlight
          el.classList.add("flash");
        }
      });
    });
    document.querySelectorAll('[data-show-nonzero="held"]').forEach(function (el) {
      el.classList.toggle("hidden", units(String(balance.held || "0")) === 0n);
    });
    var pct = percentUsed(String(balance.used), String(balance.total));
    document.querySelectorAll("[data-balance-bar]").forEach(function (bar) {
      bar.setAttribute("aria-valuenow", String(pct));
      var fill = bar.querySelector(".bar-fill");
      if (!fill) return;
      fill.style.width = pct + "%";
      fill.classList.toggle("warn", pct >= 80);
      fill.classList.toggle("danger", pct >= 95);
    });
    document.querySelectorAll("[data-balance-pct]").forEach(function (el) {
      el.textContent = String(pct);
    });
  }

  function applyAlert(balance) {
    // The low-balance banner, by the server's rule (web/service.py balance_banner): Left
    // at 0 is depleted; else Left below thresholds shows the highest of them.
    if (balance.left === undefined) return;
    var left = units(String(balance.left));
    document.querySelectorAll("[data-balance-alert]").forEach(function (box) {
      var highest = null;
      (box.dataset.thresholds || "").split(" ").forEach(function (t) {
        if (t && left < units(t) && (highest === null || units(t) > units(highest))) highest = t;
      });
      var depleted = left <= 0n;
      var shown = depleted || highest !== null;
      box.classList.toggle("hidden", !shown);
      box.classList.toggle("alert-error", depleted);
      box.classList.toggle("alert-warn", !depleted);
      box.querySelectorAll("[data-alert-when]").forEach(function (p) {
        p.classList.toggle("hidden", (p.dataset.alertWhen === "depleted") !== depleted);
      });
      box.querySelectorAll("[data-alert-left]").forEach(function (el) {
        el.textContent = groupCredits(String(balance.left));
      });
      box.querySelectorAll("[data-alert-threshold]").forEach(function (el) {
        el.textContent = highest === null ? "" : groupCredits(highest);
      });
    });
  }

  var partsTimer = null;
  var partsLoading = false;
  var partsAgain = false;

  function refreshParts(root) {
    // The usage page's team table and chart: reloaded whole from the server a moment after
    // changes arrive (a burst of events costs one load), one load at a time.
    if (root.dataset.liveParts !== "1") return;
    if (partsTimer) clearTimeout(partsTimer);
    partsTimer = setTimeout(function () { partsTimer = null; loadParts(root); }, 250);
  }

  function loadParts(root) {
    if (partsLoading) { partsAgain = true; return; }
    partsLoading = true;
    var url = "/app/orgs/" + encodeURIComponent(root.dataset.org) + "/live?days=" +
      encodeURIComponent(root.dataset.days || "30");
    fetchHtml(url).then(function (html) {
      if (html === null) return;
      var fresh = new DOMParser().parseFromString(html, "text/html");
      replacePart(fresh, "[data-chart-part]");
      replacePart(fresh, "[data-forecast-part]"); // the forecast sentence under the balance
      var teams = document.querySelector("[data-teams-body]");
      if (teams && teams.contains(document.activeElement)) {
        // Someone is typing a limit: keep their input, reload when they leave it.
        teams.addEventListener("focusout", function () { refreshParts(root); }, { once: true });
        return;
      }
      replacePart(fresh, "[data-teams-body]");
    }).catch(function () { /* the next event or a reload shows them */ })
      .then(function () {
        partsLoading = false;
        if (partsAgain) { partsAgain = false; refreshParts(root); }
      });
  }

  function replacePart(fresh, selector) {
    var from = fresh.querySelector(selector);
    var into = document.querySelector(selector);
    if (from && into && into.innerHTML !== from.innerHTML) into.innerHTML = from.innerHTML;
  }

  function updateRow(root, consumptionId) {
    var body = document.querySelector("[data-history-body]");
    if (!body) return;
    var existing = body.querySelector('tr[data-consumption="' + consumptionId + '"]');
    // Only the unfiltered first page takes new rows; any page refreshes a row it shows.
    if (!existing && root.dataset.history !== "1") return;
    var url = "/app/orgs/" + encodeURIComponent(root.dataset.org) + "/history/" + consumptionId;
    fetchHtml(url)
      .then(function (html) {
        if (!html) return; // not ours to see (a member sees only their own usage)
        var holder = document.createElement("tbody");
        holder.innerHTML = html.trim();
        var row = holder.querySelector("tr");
        if (!row) return;
        row.classList.add("fresh");
        var current = body.querySelector('tr[data-consumption="' + consumptionId + '"]');
        if (current) {
          var wasOpen = current.querySelector('[data-details][aria-expanded="true"]');
          current.replaceWith(row);
          var opener = row.querySelector("[data-details]");
          if (wasOpen && opener) openDetails(opener); // what changed (a refund) shows there too
          return;
        }
        var empty = body.querySelector("tr.empty");
        if (empty) empty.remove();
        body.insertBefore(row, body.firstChild);
        var limit = 25;
        var rows = body.querySelectorAll("tr[data-consumption]");
        for (var i = limit; i < rows.length; i++) {
          var details = detailsRowOf(rows[i].dataset.consumption);
          if (details) details.remove();
          rows[i].remove();
        }
      })
      .catch(function () { /* the next event or a reload shows it */ });
  }

  // -- the usage history's row details ------------------------------------------------------
  // A row's button (a real button: keyboard and touch work as for any) opens its details in
  // a row below it, loaded fresh each time it opens; pressing it again hides them.

  function detailsRowOf(consumptionId) {
    return document.getElementById("consumption-" + consumptionId + "-details");
  }

  function openDetails(opener) {
    var id = opener.closest("tr").dataset.consumption;
    opener.setAttribute("aria-expanded", "true");
    opener.setAttribute("aria-busy", "true");
    fetchHtml(opener.dataset.details).catch(function () { return null; }).then(function (html) {
      var row = document.querySelector('tr[data-consumption="' + id + '"]');
      if (!row) return;
      var holder = document.createElement("tbody");
      holder.innerHTML = html ? html.trim() : "";
      var fresh = holder.querySelector("tr.details-row");
      if (!fresh) {
        fresh = document.createElement("tr");
        fresh.className = "details-row";
        fresh.id = "consumption-" + id + "-details";
        var cell = fresh.appendChild(document.createElement("td"));
        cell.colSpan = row.cells.length;
        cell.className = "muted";
        cell.textContent = "The details could not be loaded: reload the page to try again.";
      }
      var old = detailsRowOf(id);
      if (old) old.replaceWith(fresh); else row.after(fresh);
      var current = row.querySelector("[data-details]");
      if (!current) return;
      current.removeAttribute("aria-busy");
      current.setAttribute("aria-controls", fresh.id);
      // Closed again while it loaded: keep it hidden.
      fresh.classList.toggle("hidden", current.getAttribute("aria-expanded") !== "true");
    });
  }

  function closeDetails(opener) {
    opener.setAttribute("aria-expanded", "false");
    var shown = detailsRowOf(opener.closest("tr").dataset.consumption);
    if (shown) shown.classList.add("hidden");
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest ? event.target.closest("[data-details]") : null;
    if (!opener) return;
    if (opener.getAttribute("aria-expanded") === "true") closeDetails(opener);
    else openDetails(opener);
  });

  function fetchHtml(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; });
  }

  function addLedgerRow(root, seq) {
    // The staff console's ledger, newest first: insert the entry in seq order (fetches may
    // come back out of order), once.
    var body = document.querySelector("[data-ledger-body]");
    if (!body || root.dataset.staffLedger !== "1" || !seq) return;
    if (body.querySelector('tr[data-seq="' + seq + '"]')) return;
    var url = "/staff/orgs/" + encodeURIComponent(root.dataset.org) + "/ledger/" + seq;
    fetchHtml(url).then(function (html) {
      if (!html || body.querySelector('tr[data-seq="' + seq + '"]')) return;
      var holder = document.createElement("tbody");
      holder.innerHTML = html.trim();
      var row = holder.querySelector("tr");
      if (!row) return;
      row.classList.add("fresh");
      var empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      var rows = body.querySelectorAll("tr[data-seq]");
      var before = null;
      for (var i = 0; i < rows.length; i++) {
        if (Number(rows[i].dataset.seq) < Number(seq)) { before = rows[i]; break; }
      }
      body.insertBefore(row, before);
      rows = body.querySelectorAll("tr[data-seq]");
      for (var j = 50; j < rows.length; j++) rows[j].remove();
    }).catch(function () { /* a reload shows it */ });
  }

  var holdsLoading = false;
  var holdsAgain = false;

  function refreshHolds(root) {
    // The staff console's open holds: reloaded whole (they are few), one load at a time.
    var body = document.querySelector("[data-open-holds]");
    if (!body) return;
    if (holdsLoading) { holdsAgain = true; return; }
    holdsLoading = true;
    var url = "/staff/orgs/" + encodeURIComponent(root.dataset.org) + "/holds/open";
    fetchHtml(url).then(function (html) {
      if (html !== null) body.innerHTML = html;
    }).catch(function () { /* the next event or a reload shows them */ })
      .then(function () {
        holdsLoading = false;
        if (holdsAgain) { holdsAgain = false; refreshHolds(root); }
      });
  }

  var HOLD_ACTIONS = { hold: true, release: true, hold_expiry: true, consumption: true };

  function setStatus(text, on) {
    document.querySelectorAll("[data-live-status]").forEach(function (el) {
      el.textContent = text;
      el.classList.toggle("on", on);
    });
  }

  function connect(root) {
    if (!window.EventSource) {
      setStatus("reload to update", false);
      return;
    }
    var url = "/v1/orgs/" + encodeURIComponent(root.dataset.org) + "/events?after=" +
      encodeURIComponent(root.dataset.seq || "0");
    var source = new EventSource(url, { withCredentials: true });
    source.onopen = function () { setStatus("live", true); };
    source.onerror = function () {
      // EventSource reconnects by itself (with Last-Event-ID) unless the server refused it.
      setStatus(source.readyState === EventSource.CLOSED ? "reload to update" : "reconnecting…", false);
    };
    source.addEventListener("ledger", function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (event.lastEventId) root.dataset.seq = event.lastEventId;
      if (data.balance) {
        applyBalance(data.balance);
        applyAlert(data.balance);
      }
      var entry = data.entry || {};
      // A settle's consumption is one like any other: its history row names the hold.
      if (entry.consumption_id && (entry.action === "consumption" || entry.action === "refund")) {
        updateRow(root, entry.consumption_id);
      }
      addLedgerRow(root, entry.seq || event.lastEventId);
      if (HOLD_ACTIONS[entry.action]) refreshHolds(root);
      refreshParts(root);
    });
    window.creditpoolStream = source; // for tests and debugging
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-back]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        history.back();
      });
    });
    var root = document.querySelector("[data-live]");
    if (root) connect(root);
  });
})();
